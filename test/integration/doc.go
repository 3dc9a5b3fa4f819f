// Package integration runs shardfleet as users deploy it: real redis-server
// processes (internal/redistest), cmd/fakediscord as a process, and several
// cmd/worker processes, all talking over loopback. The tests check the fleet's
// promises end to end (every shard READY once, RESUME instead of IDENTIFY
// after kill -9 or SIGTERM, no dispatch lost or duplicated in the Redis
// stream, balanced joins, no identify loop on a bad token) and the fake's
// invariants throughout. Benchmarks measure the handoff gap and the failover
// time.
//
// TestMain builds both binaries once into a temporary directory; when they do
// not build, every test is skipped with the reason. Timings are compressed
// (lease TTL 1.5 s, renew 300 ms, identify window 100 ms).
//
// It holds no library code.
package integration
