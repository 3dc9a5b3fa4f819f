# Multi-stage build of shardfleet's two programs as static binaries:
#   worker       the shard worker (cmd/worker), the image's entrypoint
#   fakediscord  the fake Discord for offline runs (cmd/fakediscord)
# The final image is distroless (no shell), runs as a non-root user.

FROM golang:1.26-alpine AS build
WORKDIR /src
# Dependencies first, so code changes do not refetch them.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ENV CGO_ENABLED=0
# One go build for both: their packages compile in parallel.
RUN go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/worker ./cmd/fakediscord

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/worker /out/fakediscord /usr/local/bin/
USER nonroot:nonroot
# HTTP_ADDR: /metrics /healthz /readyz /status
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/worker"]
