#!/usr/bin/env bash
# Makes offline stand-ins for the three base images the Dockerfile and
# docker-compose.yml name, from what this machine has, with `docker import`:
#
#   golang:1.26-alpine      this host's Go toolchain (go env GOROOT), the
#                           module cache entries go.sum names (nothing else),
#                           busybox for RUN's /bin/sh; GOPROXY=off
#   gcr.io/distroless/static-debian12:nonroot
#                           /etc/passwd and /etc/group (nonroot = 65532), CA
#                           certificates, /tmp: what the static binaries need
#   redis:7-alpine          Debian's redis-server and redis-cli with the
#                           libraries ldd lists, and an entrypoint that turns
#                           protected mode off as the official image does
#
# So the unmodified Dockerfile and compose file build and run where no image
# registry is reachable (CI, test/integration's TestComposeFleet). An image
# that already exists under a name is kept unless STANDINS_FORCE=1, so reruns
# reuse it (and every layer built on it). Needs: docker (DOCKER_HOST),
# go, redis-server, redis-cli, busybox-static (apt-get install busybox-static).
set -euo pipefail
cd "$(dirname "$0")/.."

builder=golang:1.26-alpine
static=gcr.io/distroless/static-debian12:nonroot
redis=redis:7-alpine

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# needed IMAGE: true when IMAGE must be (re)made.
needed() {
  [ "${STANDINS_FORCE:-0}" = 1 ] || ! docker image inspect "$1" >/dev/null 2>&1
}

# busybox_into DIR: a static busybox as DIR/bin/sh (and the few tools a RUN
# line or the redis entrypoint uses).
busybox_into() {
  local bb
  bb=$(command -v busybox) || { echo "docker-standins: busybox missing (apt-get install busybox-static)" >&2; exit 1; }
  if ldd "$bb" >/dev/null 2>&1; then
    echo "docker-standins: $bb is dynamically linked; install busybox-static" >&2
    exit 1
  fi
  mkdir -p "$1/bin"
  cp "$bb" "$1/bin/busybox"
  for tool in sh ls cat mkdir rm cp mv env; do ln -s busybox "$1/bin/$tool"; done
}

# modcache_files: the module cache's download entries (relative to GOMODCACHE)
# of every module go.sum names: .mod and .info always, .zip and .ziphash when
# go.sum holds the module's content hash. The Dockerfile's `go mod download`
# unpacks the zips, as it would after fetching them.
modcache_files() {
  local mod ver hash path
  while read -r mod ver hash; do
    # The cache escapes upper-case letters as !lower-case.
    path="cache/download/$(sed 's/[A-Z]/!\l&/g' <<<"$mod")/@v"
    case $ver in
      */go.mod) ver=${ver%/go.mod} ;;
      *) echo "$path/$ver.zip"; echo "$path/$ver.ziphash" ;;
    esac
    echo "$path/$ver.mod"; echo "$path/$ver.info"
  done <go.sum | sort -u
}

make_builder() {
  local root=$work/builder goroot modcache
  goroot=$(go env GOROOT)
  modcache=$(go env GOMODCACHE)
  go mod download # the cache must hold every module go.sum names
  mkdir -p "$root/usr/local" "$root/go/pkg/mod" "$root/tmp" "$root/root" "$root/etc"
  chmod 1777 "$root/tmp"
  busybox_into "$root"
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
  # The toolchain without its tests and docs (a third of it).
  tar -C "$(dirname "$goroot")" --exclude="$(basename "$goroot")/test" \
    --exclude="$(basename "$goroot")/doc" --exclude="$(basename "$goroot")/api" \
    -cf - "$(basename "$goroot")" | tar -C "$root/usr/local" -xf -
  [ "$(basename "$goroot")" = go ] || mv "$root/usr/local/$(basename "$goroot")" "$root/usr/local/go"
  modcache_files | while read -r f; do
    # A module fetched for its go.mod alone may have no .info: copy what exists.
    [ -e "$modcache/$f" ] && echo "$f"
  done >"$work/modfiles"
  tar -C "$modcache" -cf - -T "$work/modfiles" | tar -C "$root/go/pkg/mod" -xf -
  tar -C "$root" -cf - . | docker import \
    -c 'ENV PATH=/usr/local/go/bin:/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV GOPATH=/go' -c 'ENV GOMODCACHE=/go/pkg/mod' \
    -c 'ENV GOPROXY=off' -c 'ENV GOFLAGS=-mod=mod' -c 'ENV GOSUMDB=off' -c 'ENV GOTOOLCHAIN=local' \
    -c 'WORKDIR /go' -c 'CMD ["/bin/sh"]' - "$builder" >/dev/null
}

make_static() {
  local root=$work/static
  mkdir -p "$root/etc/ssl/certs" "$root/tmp" "$root/home/nonroot"
  chmod 1777 "$root/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$root/etc/group"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  chown 65532:65532 "$root/home/nonroot"
  tar -C "$root" -cf - . | docker import - "$static" >/dev/null
}

make_redis() {
  local root=$work/redis bin lib
  mkdir -p "$root/usr/bin" "$root/data" "$root/tmp"
  chmod 1777 "$root/tmp"
  busybox_into "$root"
  for bin in redis-server redis-cli; do
    cp "$(command -v "$bin")" "$root/usr/bin/"
    for lib in $(ldd "$(command -v "$bin")" | grep -o '/[^ ]*'); do
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    done
  done
  # The official image builds redis with protected mode off (a container's
  # clients are never on its loopback); Debian's binary has it on.
  cat >"$root/usr/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
if [ "$1" = redis-server ]; then set -- "$@" --protected-mode no; fi
exec "$@"
EOF
  chmod 755 "$root/usr/bin/docker-entrypoint.sh"
  tar -C "$root" -cf - . | docker import \
    -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin' -c 'WORKDIR /data' -c 'VOLUME /data' \
    -c 'ENTRYPOINT ["docker-entrypoint.sh"]' -c 'CMD ["redis-server"]' - "$redis" >/dev/null
}

for pair in "$builder make_builder" "$static make_static" "$redis make_redis"; do
  set -- $pair
  if needed "$1"; then
    start=$SECONDS
    "$2"
    echo "docker-standins: made $1 ($((SECONDS - start)) s)"
  else
    echo "docker-standins: kept $1"
  fi
done
