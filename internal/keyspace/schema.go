package keyspace

import (
	"fmt"
	"strings"
)

// KeyDoc documents one key of the schema. P stands for the fleet's prefix, S
// for the prefix of a partition (of the key's shard; see partition.go); <x>
// for a part that varies.
type KeyDoc struct {
	Pattern string // e.g. "P lease:<count>:<shard_id>"
	Type    string // Redis type
	Writers string // the packages that write it
	Content string
}

// Schema is every key of a fleet. Keys may be added, never changed: workers of
// two versions share one Redis during a rolling upgrade.
var Schema = []KeyDoc{
	{"P member:<worker_id>", "STRING", "internal/lease", "JSON MemberInfo, PX = lease TTL, renewed by the keep-alive"},
	{"P members", "ZSET", "internal/lease", "worker_id -> expiry (server ms); the liveness truth is member:*"},
	{"P members:since", "ZSET", "internal/lease", "worker_id -> join time (server ms)"},
	{"S lease:<count>:<shard_id>", "HASH", "internal/lease", "owner, token (decimal uint64, only grows), req (claim request id)"},
	{"S session:<count>:<shard_id>", "HASH", "internal/lease, internal/eventsink", "session_id, seq (last committed), resume_url, token (of the last fenced write)"},
	{"S member:<worker_id>", "STRING", "internal/lease", "the partition's mirror of P member:<worker_id> (same value and PX, same register and renew): the fence reads it in the shard's slot; with one partition it is that key"},
	{"P epoch", "STRING", "internal/lease", "random data-loss detector of the fleet-wide keys"},
	{"P partitions", "STRING", "internal/lease", "the fleet's partition count P, stored by its first worker; never changes"},
	{"S epoch", "STRING", "internal/lease", "random data-loss detector of the partition (its master may restart empty alone); with one partition it is P epoch"},
	{"S grace", "STRING", "internal/lease", "present (PX) while the partition's data-loss grace runs"},
	{"S fence", "STRING", "internal/lease", "the last fencing token issued in the partition"},
	{"P layout", "HASH", "internal/lease", "version, data (JSON of the layout)"},
	{"S events", "STREAM", "internal/eventsink", "one entry per dispatch of the partition's shards: shard, count, seq, session, type, data, fence"},
	{"P status:<worker_id>", "STRING", "internal/worker", "JSON status for `worker status`, PX = 3 x lease TTL"},
	{"S cmdq:<count>:<shard_id>", "STREAM", "pkg/fleet (senders), internal/worker", "gateway commands queued for the shard, oldest first: id, op, d (JSON), deadline (unix ms, 0: none); the owner XDELs each once sent, expired or rejected"},
	{"S cmdres:<command_id>", "STRING", "internal/worker, pkg/fleet", "JSON outcome of a command (in its shard's partition): state (sent, expired or rejected), shard, count, session, at (server ms), reason; PX = 24 h"},
	{"S cmdmv:<count>:<shard_id>:<entry_id>", "STRING", "internal/worker", "present (PX 30 s) while the owner of an heir of the split shard moves the queue entry to heirs in other partitions: one mover at a time"},
	{"P cmdev", "pub/sub channel", "pkg/fleet (senders)", "\"<count>:<shard_id>\" after a command is queued: wakes the owner at once (else its worker's sweep finds it)"},
	{"P presence", "STRING", "pkg/fleet, internal/worker", "JSON of the fleet's presence (op 3's d): every IDENTIFY carries it; set from PRESENCE when absent"},
	{"S cache:g:<guild_id>", "HASH", "internal/eventsink (cache)", "guild (JSON, top-level fields), unavailable (0/1), shard (<id>/<count>); under the guild's shard's keys"},
	{"S cache:g:<guild_id>:channels", "HASH", "internal/eventsink (cache)", "channel or thread ID -> JSON"},
	{"S cache:g:<guild_id>:roles", "HASH", "internal/eventsink (cache)", "role ID -> JSON"},
	{"S cache:g:<guild_id>:emojis", "HASH", "internal/eventsink (cache)", "emoji ID -> JSON"},
	{"S cache:g:<guild_id>:stickers", "HASH", "internal/eventsink (cache)", "sticker ID -> JSON"},
	{"S cache:g:<guild_id>:members", "HASH", "internal/eventsink (cache)", "user ID -> member JSON"},
	{"S cache:g:<guild_id>:voice", "HASH", "internal/eventsink (cache)", "user ID -> voice state JSON"},
	{"S cache:g:<guild_id>:presences", "HASH", "internal/eventsink (cache)", "user ID -> presence JSON"},
	{"S cache:g:<guild_id>:msgs:<channel_id>", "LIST", "internal/eventsink (cache)", "the channel's last messages (JSON), newest first"},
	{"S cache:shard:<count>:<shard_id>", "SET", "internal/eventsink (cache)", "guild IDs cached for the shard (reconciled after each new session's READY)"},
	{"P cache:kinds", "STRING", "internal/worker", "comma list of the kinds the cache keeps (CACHE)"},
	{"P idf:hold:<bucket>", "HASH", "pkg/redislimiter", "the bucket's permit: t (ticket), g (granted, µs), s (seq), u (unlocked, µs), e (hold expiry, µs)"},
	{"P idf:q:<bucket>", "ZSET", "pkg/redislimiter", "waiting tickets in FIFO order"},
	{"P idf:qd:<bucket>", "ZSET", "pkg/redislimiter", "ticket -> deadline (server ms)"},
	{"P idf:seq", "STRING", "pkg/redislimiter", "ticket counter"},
	{"P idf:budget", "HASH", "pkg/redislimiter, internal/worker", "the daily session-start budget: remaining (PX = Discord's reset_after)"},
	{"P idf:log", "STREAM", "pkg/redislimiter", "grants (only with GrantLog), capped"},
	{"P idf:epoch", "HASH", "pkg/redislimiter", "the limiter's data-loss detector: id, born (server ms)"},
	{"P idf:quiet", "STRING", "pkg/redislimiter", "present (PX) while no permit may be granted after a data loss"},
	{"P idf:maxconc", "STRING", "pkg/redislimiter", "max_concurrency as discovered"},
	{"P idf:ev", "pub/sub channel", "pkg/redislimiter", "wakes waiters when a permit frees"},
}

// SchemaMarkdown renders Schema as the table of docs/keyspace.md.
func SchemaMarkdown() string {
	var b strings.Builder
	b.WriteString("| key | type | written by | content |\n|---|---|---|---|\n")
	for _, d := range Schema {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", d.Pattern, d.Type, d.Writers, d.Content)
	}
	return b.String()
}
