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
// # World
//
// Each guild has a state worth caching: channels (text, voice, category)
// and threads, roles (@everyone's id is the guild's, permissions are
// decimal strings), emojis, stickers, members with their user objects and
// roles, voice states and presences. WithWorld sizes it (World's counts,
// the same for the same Seed); without it a guild keeps its one @everyone
// role and one "general" channel, and its fixed GUILD_CREATE bytes until a
// change touches it (or State builds it). GUILD_CREATE carries the whole guild as Discord does
// (channels, threads, roles, emojis, stickers, members, voice_states,
// presences, large, member_count, joined_at); op 8 answers from the
// members (and presences, if asked).
//
// Change changes the world and sends the dispatches Discord would to every
// session of the guild's shard: live ones at once, disconnected resumable
// ones buffered for RESUME. A change made while the shard has no session
// still changes the world, so the next READY and GUILD_CREATE show it: a
// guild the bot left (guild-leave) is no longer in READY, and a guild in an
// outage (guild-unavailable) is listed in READY and gets GUILD_DELETE
// {unavailable:true} instead of GUILD_CREATE until guild-available sends
// its GUILD_CREATE. The change kinds and what each sends are listed on
// ChangeKind's constants.
//
// State (GET /_fake/state) is the ground truth in the cache contract's
// shape (issue 11; the shape of `worker cache dump`). ApplyDispatch is the
// contract's rules: applying every dispatch a client received, in order,
// to NewState(World.Messages) gives the ground truth (Diff compares two
// states). Mutate applies random valid changes; MutationsPerSecond keeps
// them flowing. The steady MESSAGE_CREATE load (EventsPerSecond) is not
// part of the world: its channels are made up and its messages are not
// kept.
//
// A caveat for messages: they are not part of GUILD_CREATE, so message
// changes sent to a session that ends before a client reads them (op 9
// false after a drop) are in the ground truth but in no cache. Compare
// messages only across RESUMEs, or keep none (World.Messages 0: Mutate then
// draws no message changes). Likewise a cache that never saw a guild before
// its outage holds only {"guild": {"id"}, "unavailable": true} for it.
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
//	/_fake/state               the ground truth (State): every guild with all its kinds
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
// World changes (POST, answer {"object": the object created or changed} or
// 400 {"error"}); the body is a Change: {"guild_id": "G", "id": "X",
// "channel_id": "C", "user_id": "U", "ids": ["X", ...], "fields": {...}},
// only guild_id always required:
//
//	/_fake/world/channel-create        fields.type 0|2|4|5|13|15, channel_id: its category
//	/_fake/world/channel-update        id, fields
//	/_fake/world/channel-delete        id (its threads, children's parent and voice go first)
//	/_fake/world/thread-create         channel_id (a text channel), fields
//	/_fake/world/thread-update         id, fields
//	/_fake/world/thread-delete         id
//	/_fake/world/role-create           fields (permissions: a decimal string)
//	/_fake/world/role-update           id, fields
//	/_fake/world/role-delete           id (its members get GUILD_MEMBER_UPDATE first)
//	/_fake/world/emojis-update         id+fields: change; fields alone: add; ids: remove
//	/_fake/world/stickers-update       the same
//	/_fake/world/member-add            user_id (absent: a new user), fields
//	/_fake/world/member-update         user_id, fields (roles: role ids)
//	/_fake/world/member-remove         user_id (leaves voice first)
//	/_fake/world/voice                 user_id, channel_id: join or move; no channel_id: leave
//	/_fake/world/presence              user_id, fields (status, activities, client_status)
//	/_fake/world/guild-update          fields
//	/_fake/world/guild-leave           the bot leaves the guild (GUILD_DELETE without unavailable)
//	/_fake/world/guild-unavailable     GUILD_DELETE {unavailable:true}
//	/_fake/world/guild-available       GUILD_CREATE
//	/_fake/world/message-create        channel_id, user_id (absent: the bot), fields
//	/_fake/world/message-update        channel_id, id, fields
//	/_fake/world/message-delete        channel_id, id
//	/_fake/world/message-delete-bulk   channel_id, ids
//	/_fake/world/mutate?n=N&seed=S     N random changes (Mutate) -> {"applied": n}
//	/_fake/world/mutations-per-second?rate=R   steady random changes -> {"rate": R}
//
// The control API has no authentication: bind the fake to loopback only.
package gatewaytest
