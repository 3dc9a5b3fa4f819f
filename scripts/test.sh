#!/usr/bin/env bash
# The project's test command: vet, race-enabled tests, every fuzz target briefly.
# FUZZTIME (default 3s) sets how long each fuzz target runs.
set -uo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-3s}
passed=0 failed=0

step() { # name, command...
  local name=$1; shift
  echo "== $name"
  if "$@"; then passed=$((passed+1)); else failed=$((failed+1)); echo "FAILED: $name"; fi
}

step "go vet" go vet ./...
step "go test -race" go test -race -count=1 -timeout 20m ./...

# Every Fuzz* target of every package, a few seconds each.
for pkg in $(go list ./...); do
  for fz in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    step "fuzz $pkg $fz" go test -run '^$' -fuzz "^${fz}\$" -fuzztime "$fuzztime" "$pkg"
  done
done

echo "steps: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
