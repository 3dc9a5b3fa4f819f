// Command gatewaybench measures what a user of pkg/sharding pays per event
// and per idle shard, end to end: a stand-in server in a process of its own,
// each client in a process of its own, CPU time and RSS read from the kernel.
// It is a benchmark, not a test: CI never runs it. docs/benchmarks.md holds
// its figures with the commands that produced them.
//
//	gatewaybench flood [-events 200000] [-reps 3] [-compressions plain,zlib-stream,zstd-stream] [-procs default,1] [-peers discordjs] [-peerdir bench/peers]
//	gatewaybench idle  [-shards 1000] [-reps 3] [-compressions plain,zlib-stream] [-settle 12s]
//	gatewaybench instructions [-events 100000] [-reps 3] [-compressions plain,zlib-stream,zstd-stream]
//
// flood starts the server (gatewaybench serve), which pre-encodes HELLO,
// READY and the flood of MESSAGE_CREATE dispatches once per compression and
// writes them as pre-framed websocket bytes, so the server costs next to
// nothing. Each client (gatewaybench client) opens one shard through
// pkg/sharding, with a handler that checks t, s and the raw d, and reports
// its own user+system CPU time (getrusage) from before Open until the last
// event was handled. Repetitions run interleaved; the table shows medians
// and ranges.
//
// -peers adds other libraries' clients to the same run, each a process of
// its own against the same server and flood, measured the same way (its own
// getrusage from before it connects until the last event): discordjs is
// bench/peers/discordjs, one shard through @discordjs/ws, which needs node
// and `npm ci` there (flood skips it, saying why, without them). The ratios
// of shardfleet's events per CPU-second to each peer's follow the table.
//
// idle starts the project's fake (gatewaytest, as cmd/fakediscord serves
// it) in the server process and, per repetition, clients that open 1 and N
// idle shards, through pkg/sharding and through gateway.New; the figure is
// (RSS with N − RSS with 1) / (N − 1), measured after -settle (long enough
// for idle zlib-stream shards to release their inflaters).
//
// instructions runs flood's client under valgrind (cachegrind, Debian's
// valgrind package) and reports the instructions it executes per event:
// (least count for -events − least count for -events/5) / (the difference in
// events), each size against a server of its own. Events per CPU-second
// move by a quarter or more with the machine's speed on the day; this count
// moves by about one percent between runs, so it is the figure that
// tells whether a change to the per-event path helped.
package main
