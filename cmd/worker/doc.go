// Command worker runs a Discord bot's gateway shards, alone or as one member of
// a fleet coordinated through Redis.
//
// Modes:
//
//   - Local (no REDIS_URL): one process runs every shard with the in-process
//     identify limiter. Dispatches are counted, not stored.
//   - Simulation (-sim): local mode against an in-process fake Discord, so
//     `go run ./cmd/worker -sim` works offline and shows shards coming up and
//     events flowing.
//   - Fleet (REDIS_URL set): the worker joins the fleet named by KEY_PREFIX,
//     runs the shards whose leases it holds (internal/worker), shares the
//     identify limiter through Redis and writes every dispatch exactly once into
//     the Redis stream KEY_PREFIX+"events" (internal/eventsink).
//
// `worker status` prints the fleet read from Redis. HTTP_ADDR serves /metrics,
// /healthz, /readyz and /status.
//
// Configuration comes from flags and environment variables (a flag wins); run
// `worker -h` for the list. The token is never printed: Secret redacts it in
// every format.
//
// It is not a library: programs that want shards in-process use pkg/sharding.
package main
