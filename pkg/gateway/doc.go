// Package gateway is one Discord shard's gateway connection: dial, HELLO,
// heartbeats with zombie detection, IDENTIFY (through a shared identify
// limiter) or RESUME, the close-code table, reconnects with backoff, transport
// compression (zlib-stream, zstd-stream, per-payload zlib), the send limiter,
// and delivery of every dispatch, in order, to an EventHandlerFunc.
//
// It is for running one shard (New, then Open), and for handing a shard's
// session to another process (Handoff, ShardState, WithShardState). It is not
// a shard manager (see pkg/sharding), knows nothing of Redis or leases, and
// does not decode events: the handler gets each dispatch's raw JSON. The only
// events the connection decodes itself are READY and RESUMED.
//
// Goroutines per open shard: one for the live connection (its read loop; each
// reconnect continues on a fresh one, so a long-lived read loop keeps a small
// stack), a dispatcher that calls the handler while there are events (it
// exits after 100 ms idle), and short-lived ones for the dial, the
// handshake, heartbeats (timer callbacks) and closes. Close, CloseWithCode and
// Handoff wait for all of them, bounded by their ctx. A handler (or the close
// handler) may call Close on its own shard: Close then does not wait for the
// callback it is called from.
//
// The zombie rule is Discord's (no heartbeat ACK between two beats) with one
// exception: a connection that received anything since the last beat is not
// a zombie, since under a flood of dispatches the ACK waits behind them.
//
// One bad message does not poison a session (frames.go): a dispatch whose s
// jumps ahead is neither delivered nor trusted (the connection RESUMEs so
// that Discord replays the gap, and only the same jump again right after the
// replay is taken); one with a missing, non-positive or backwards s, no t, or
// invalid UTF-8 is dropped; a message over ReadLimit (compressed messages
// are bounded by their inflated size) is RESUMEd over at most
// UnreadableRetries times before the session is given up. FrameFaultHook
// counts each.
package gateway
