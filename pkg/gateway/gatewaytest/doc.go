// Package gatewaytest is a faithful fake Discord (REST + gateway) for tests
// and for users' CI, in the spirit of net/http/httptest: NewServer starts one
// on a loopback port, Close stops it and waits for every goroutine it started.
//
// It is for exercising gateway clients and shard managers against the real
// protocol over real websockets: it is as strict as Discord, never kinder,
// and it records the invariants a fleet must keep (identify pacing per
// rate-limit key, one live session per shard, no sequence gap, fatal closes).
// It is not a Discord REST emulator beyond the two gateway bootstrap routes,
// it speaks JSON only (no ETF), and it must not be pointed at real tokens.
// It does not use pkg/gateway's client; it only borrows its constants.
//
// # REST
//
//	GET /api/v10/gateway        {"url": "ws://127.0.0.1:PORT/gateway"} (no auth)
//	GET /api/v10/gateway/bot    Authorization "Bot <token>" or 401; {url, shards,
//	                            session_start_limit{total, remaining, reset_after (ms),
//	                            max_concurrency}}; over RESTRateLimit per second: 429
//	                            with retry_after (float seconds) and global.
//
// /api/v9 serves the same. remaining counts down with every IDENTIFY that
// passes the token, intents and shard checks (pacing violations count too:
// Discord counts every IDENTIFY). When an IDENTIFY arrives with remaining at
// 0, the fake acts out what Discord does: it resets the bot token. That
// IDENTIFY and every open connection are closed with 4004, every session
// ends, and the token is refused (gateway 4004, REST 401) until RestoreToken
// (or POST /_fake/restore-token). remaining refills SessionStartResetAfter
// after the first IDENTIFY of a window.
//
// # Gateway
//
// Connect to GatewayURL() (/gateway) or ResumeGatewayURL() (/resume-gateway,
// READY's resume_gateway_url; it is a full gateway too, and ResumeRecord.URLPath
// tells which one a RESUME used) with ?v=9|10&encoding=json[&compress=...].
// Choices where Discord documents no code:
//
//   - v missing or not 9/10: close 4012. encoding other than json, or compress
//     other than zlib-stream/zstd-stream: close 4002. A missing encoding is json.
//   - A payload over 4096 bytes, or not JSON: 4002. A missing, receive-only or
//     unknown op (5 included): 4001. A d of the wrong shape for its op: 4001.
//   - IDENTIFY without intents: 4013. Missing properties: 4001.
//   - SendLimit payloads per SendWindow over a sliding window, heartbeats
//     included: the next one closes 4008.
//   - A late heartbeater is closed with HeartbeatTimeoutCode; its session stays
//     resumable. Server-sent closes never end a session by themselves; a
//     client close with 1000/1001 does.
//   - Identify pacing: key = shard % MaxConcurrency. An IDENTIFY sooner than
//     IdentifyWindow after the previous IDENTIFY of its key (violating ones
//     included) gets op 9 false and is recorded as a violation; the connection
//     stays open and unauthenticated.
//   - A RESUME that takes over a session whose old connection is still open
//     closes the old one with 4009 (CloseRecord.Reason "session resumed
//     elsewhere", not "heartbeat timeout"). RESUMED is a dispatch with the
//     next seq.
//   - A RESUME whose missed dispatches are no longer all buffered (more than
//     ReplayBuffer) gets op 9 false.
//   - Per-payload compression (IDENTIFY compress:true, only without transport
//     compression): READY, GUILD_CREATE and payloads of at least
//     PayloadCompressThreshold bytes go zlib-compressed one by one as binary
//     frames; the rest as text.
//   - SetSplitFrames applies to zlib-stream only (zstd-stream keeps one
//     gateway message per websocket message, as Discord does).
//
// # Throughput and memory
//
// Each connection has one reader (net/http's goroutine) and one writer
// goroutine with a queue; a writer batch goes out in one socket write.
// Dispatch never blocks on a slow client while holding a lock, but once a
// target connection has more than QueueHighWater messages queued it waits
// for that queue to drain (backpressure), so a test that dispatches tens of
// thousands of events to a connection it does not read will stall until
// WriteTimeout drops that connection. zlib-stream connections give their
// deflate state back after 100 ms without output (the stream stays valid);
// zstd-stream connections keep their encoder (about 300 KiB) for life,
// since ending the zstd frame would put a frame end inside a message.
// Sessions keep their last ReplayBuffer dispatches even after they end, for
// SentEvents.
//
// # Control API
//
// For multi-process tests (cmd/fakediscord), the same records and chaos are
// served as JSON under /_fake/. Reads (GET):
//
//	/_fake/stats               Stats
//	/_fake/identifies          []IdentifyRecord
//	/_fake/resumes             []ResumeRecord
//	/_fake/commands            []CommandRecord (every op 3, 4, 8... a session sent, in order)
//	/_fake/closes              []CloseRecord
//	/_fake/duplicates          []DuplicateRecord (two live sessions of one shard: when, which, how long)
//	/_fake/sessions            []SessionInfo
//	/_fake/guilds              the guild IDs (the initial ones, then the added ones)
//	/_fake/events?session=ID   []SentEvent of a session (404 if unknown);
//	                           &data=true adds each event's "d"
//
// Controls (POST; shard=N aims at connections of shard N, default -1: all;
// answers {"hit": n} unless noted):
//
//	/_fake/dispatch                     body {"t": "TYPE", "guild_id": "ID", "d": {...}} -> {"sent": n}
//	/_fake/add-guilds?shard=N&count=C&n=K   the bot joins K guilds of shard N/C (AddGuilds;
//	                                    live sessions get GUILD_CREATE; the shard's next
//	                                    IDENTIFY closes 4011 past MaxGuildsPerShard)
//	                                    -> {"added": K, "guilds_on_shard": m}
//	/_fake/reconnect?shard=N            op 7
//	/_fake/invalidate?shard=N&resumable=true|false   op 9
//	/_fake/close?shard=N&code=C&reason=R close frame
//	/_fake/drop?shard=N                 TCP drop, no close frame
//	/_fake/request-heartbeat?shard=N    op 1
//	/_fake/raw?shard=N&binary=true      body sent as one raw frame
//	/_fake/ack-heartbeats?ack=false     stop (or resume) ACKing
//	/_fake/withhold-ready?on=true       answer no IDENTIFY/RESUME (SetWithholdReady)
//	/_fake/split-frames?n=N             split zlib-stream messages
//	/_fake/events-per-second?rate=R     steady MESSAGE_CREATE load
//	/_fake/restore-token                undo a token reset
//
// The control API has no authentication: bind the fake to loopback only.
package gatewaytest
