// Package integration runs shardfleet as users deploy it: real redis-server
// processes (internal/redistest), cmd/fakediscord as a process, and several
// cmd/worker processes, all talking over loopback.
//
//   - fleet_test.go: the fleet's promises end to end (every shard READY once,
//     RESUME instead of IDENTIFY after kill -9 or SIGTERM, no dispatch lost or
//     duplicated in the Redis stream, balanced joins, no identify loop on a bad
//     token) with the fake's invariants checked throughout.
//   - chaos_*_test.go: TestChaos, seeded rounds of random faults (workers
//     killed, frozen past the TTL, stopped, joining and leaving; Redis
//     restarted, slowed, black-holed and reset through internal/faultproxy;
//     op 7, op 9, close codes and TCP drops from the fake; and 4011 as
//     Discord gives it: the round grows one shard past the fake's guild cap
//     (/_fake/add-guilds), forces a re-IDENTIFY with op 9 false, and the
//     fake's own IDENTIFY check closes it 4011), checking the DESIGN
//     invariants after each round. `go test` runs a short mode (8
//     rounds); a long run:
//     go test -race -run 'TestChaos$' -v ./test/integration/ -chaos.rounds=32 -chaos.seed=N
//   - security_test.go: the token is nowhere (logs, HTTP, worker status,
//     Redis); two key prefixes on one Redis; requirepass and ACL users.
//   - badinput_test.go: a live worker fed garbage frames, bad configuration,
//     corrupt Redis data.
//   - bench_test.go and scale_bench_test.go: handoff gap, failover time, and
//     2,000 shards over 10 workers (docs/benchmarks.md has the commands).
//
// The binaries are built once per run into a temporary directory; when they
// do not build, the tests are skipped with the reason, except under CI
// (CI=true or REDISTEST_REQUIRE=1), where they fail. Timings are compressed
// (lease TTL 1.5 s, renew 300 ms, identify window 100 ms).
//
// It holds no library code.
package integration
