// Package keyspace owns the fleet's Redis keyspace: every key's name and
// type, the prefix rule, the session record's fields, and the Lua rules that
// several scripts share. Every other package (internal/lease, the worker's
// event sink and status, pkg/redislimiter) builds its keys here; the schema
// document docs/keyspace.md is checked against Schema by this package's tests.
//
// Fleet-wide keys share the prefix's {hash tag}; the per-shard keys and the
// event streams are split into partitions, each with its own tag (see
// partition.go), so that a fleet spreads over Redis Cluster's masters. Every
// script touches keys of one tag only: one Cluster slot.
package keyspace

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DefaultPrefix is the key prefix of a fleet whose prefix is not set.
const DefaultPrefix = "{shardfleet}:"

// MaxShardCount bounds a shard count (Discord's largest bots run tens of
// thousands of shards; this keeps layout maths far from int overflow).
const MaxShardCount = 1 << 20

var (
	// ErrInvalidShard: a ShardKey or split factor is out of range.
	ErrInvalidShard = errors.New("shardfleet: invalid shard")
	// ErrCorrupt: a value read from Redis could not be decoded.
	ErrCorrupt = errors.New("shardfleet: corrupt value in redis")
	// ErrInvalidPartitions: a partition count is out of range.
	ErrInvalidPartitions = errors.New("shardfleet: invalid partition count")
)

// ShardKey names one shard of a layout: shard ID of a bot sharded Count ways.
// Leases, sessions and assignment are all keyed by it, so the same ID under two
// counts (before and after a split) are different shards.
type ShardKey struct {
	ID    int `json:"id"`
	Count int `json:"count"`
}

// Validate reports whether 0 <= ID < Count <= MaxShardCount; the error wraps
// ErrInvalidShard.
func (k ShardKey) Validate() error {
	if k.Count < 1 || k.Count > MaxShardCount {
		return fmt.Errorf("%w: count %d not in [1, %d]", ErrInvalidShard, k.Count, MaxShardCount)
	}
	if k.ID < 0 || k.ID >= k.Count {
		return fmt.Errorf("%w: id %d not in [0, %d)", ErrInvalidShard, k.ID, k.Count)
	}
	return nil
}

// String is "id/count".
func (k ShardKey) String() string { return fmt.Sprintf("%d/%d", k.ID, k.Count) }

func (k ShardKey) suffix() string { return strconv.Itoa(k.Count) + ":" + strconv.Itoa(k.ID) }

// NormalizePrefix is the one prefix rule of the fleet, its workers and every
// Go program that shares their Redis (pkg/redislimiter included): an empty
// prefix is DefaultPrefix; a prefix with a non-empty {hash tag} is kept as it
// is; any other is wrapped in one, without a trailing colon inside the braces
// ("app" and "app:" both become "{app}:").
func NormalizePrefix(prefix string) string {
	if prefix == "" {
		return DefaultPrefix
	}
	if hasHashTag(prefix) {
		return prefix
	}
	return "{" + strings.TrimSuffix(prefix, ":") + "}:"
}

// hasHashTag reports whether s has a non-empty {tag}, the part Redis Cluster
// hashes.
func hasHashTag(s string) bool {
	open := strings.IndexByte(s, '{')
	if open < 0 {
		return false
	}
	end := strings.IndexByte(s[open+1:], '}')
	return end > 0
}

// Keys names a fleet's Redis keys. The zero value is not usable: build it with
// NewKeys. Schema documents each key.
type Keys struct {
	prefix string
	parts  []string // partition prefixes (WithPartitions); nil: one, the prefix
}

// NewKeys returns the keys for prefix, normalised by NormalizePrefix, with one
// partition (see WithPartitions).
func NewKeys(prefix string) Keys { return Keys{prefix: NormalizePrefix(prefix)} }

// Prefix is the normalised prefix, with its hash tag.
func (k Keys) Prefix() string { return k.prefix }

// Member is the liveness key of a worker.
func (k Keys) Member(workerID string) string { return k.prefix + "member:" + workerID }

// PartitionMember is partition p's mirror of a worker's liveness (same value
// and PX as Member, written by the same register and renew), so that the
// fence of a shard's write reads the holder's liveness in the shard's slot.
// With one partition it is Member itself.
func (k Keys) PartitionMember(p int, workerID string) string {
	return k.PartitionPrefix(p) + "member:" + workerID
}

// ShardMember is the liveness mirror, in shard s's partition, that fences
// writes for s (keyspace.LuaLeaseValid's K_member).
func (k Keys) ShardMember(s ShardKey, workerID string) string {
	return k.PartitionMember(k.PartitionOf(s), workerID)
}

// PartitionCount stores the fleet's partition count P, once.
func (k Keys) PartitionCount() string { return k.prefix + "partitions" }

// Members is the membership index (ZSET worker_id -> expiry, server ms).
func (k Keys) Members() string { return k.prefix + "members" }

// MembersSince is the join-time index (ZSET worker_id -> join time, server ms).
func (k Keys) MembersSince() string { return k.prefix + "members:since" }

// shardScoped is the prefix of every key that belongs to shard s (its lease,
// session record, command queue, cache): the one place that decides which
// Redis Cluster slot a shard's keys live in. Every per-shard key is built on it.
func (k Keys) shardScoped(s ShardKey) string { return k.PartitionPrefix(k.PartitionOf(s)) }

// Lease is the ownership hash of a shard.
func (k Keys) Lease(s ShardKey) string { return k.shardScoped(s) + "lease:" + s.suffix() }

// Session is the session record of a shard (see SessionFields).
func (k Keys) Session(s ShardKey) string { return k.shardScoped(s) + "session:" + s.suffix() }

// Epoch is the data-loss detector of the fleet-wide keys.
func (k Keys) Epoch() string { return k.prefix + "epoch" }

// PartitionEpoch is partition p's data-loss detector: a partition's master
// may restart empty alone. With one partition it is Epoch itself.
func (k Keys) PartitionEpoch(p int) string { return k.PartitionPrefix(p) + "epoch" }

// Grace is present while partition p's data-loss grace runs.
func (k Keys) Grace(p int) string { return k.PartitionPrefix(p) + "grace" }

// Fence holds the last fencing token issued in partition p.
func (k Keys) Fence(p int) string { return k.PartitionPrefix(p) + "fence" }

// Layout is the fleet layout.
func (k Keys) Layout() string { return k.prefix + "layout" }

// Events is partition p's event stream: the events of its shards.
func (k Keys) Events(p int) string { return k.PartitionPrefix(p) + "events" }

// ShardEvents is the stream shard s's events go to.
func (k Keys) ShardEvents(s ShardKey) string { return k.Events(k.PartitionOf(s)) }

// Status is where a worker publishes its status for `worker status`.
func (k Keys) Status(workerID string) string { return k.prefix + "status:" + workerID }

// The identify limiter's keys (pkg/redislimiter).

// IdentifyHold is the permit of rate-limit bucket b.
func (k Keys) IdentifyHold(b int) string { return k.prefix + "idf:hold:" + strconv.Itoa(b) }

// IdentifyQueue is bucket b's FIFO of waiting tickets.
func (k Keys) IdentifyQueue(b int) string { return k.prefix + "idf:q:" + strconv.Itoa(b) }

// IdentifyDeadlines is bucket b's ticket expiry index.
func (k Keys) IdentifyDeadlines(b int) string { return k.prefix + "idf:qd:" + strconv.Itoa(b) }

// IdentifySeq numbers the limiter's tickets.
func (k Keys) IdentifySeq() string { return k.prefix + "idf:seq" }

// IdentifyBudget is the fleet's daily session-start budget.
func (k Keys) IdentifyBudget() string { return k.prefix + "idf:budget" }

// IdentifyLog is the optional grant log.
func (k Keys) IdentifyLog() string { return k.prefix + "idf:log" }

// IdentifyEpoch is the limiter's data-loss detector.
func (k Keys) IdentifyEpoch() string { return k.prefix + "idf:epoch" }

// IdentifyQuiet is present while the limiter grants nothing after a data loss.
func (k Keys) IdentifyQuiet() string { return k.prefix + "idf:quiet" }

// IdentifyMaxConcurrency is the stored max_concurrency.
func (k Keys) IdentifyMaxConcurrency() string { return k.prefix + "idf:maxconc" }

// IdentifyChannel is the pub/sub channel that wakes the limiter's waiters.
func (k Keys) IdentifyChannel() string { return k.prefix + "idf:ev" }

// Gateway commands (pkg/fleet sends them, internal/worker delivers them; the
// wire format is docs/commands.md).

// Commands is the queue of commands for shard s, oldest first.
func (k Keys) Commands(s ShardKey) string { return k.shardScoped(s) + "cmdq:" + s.suffix() }

// CommandOutcome is the outcome record of command id, queued for shard s: in
// s's partition, so that the fenced script that takes the command off s's
// queue writes it in the same slot. A reader that knows only the ID looks in
// every partition.
func (k Keys) CommandOutcome(s ShardKey, id string) string { return k.shardScoped(s) + "cmdres:" + id }

// PartitionCommandOutcome is command id's outcome record if its shard is in
// partition p.
func (k Keys) PartitionCommandOutcome(p int, id string) string {
	return k.PartitionPrefix(p) + "cmdres:" + id
}

// CommandMove marks queue entry entry of split shard s as being moved to
// its heirs in other partitions (one mover at a time).
func (k Keys) CommandMove(s ShardKey, entry string) string {
	return k.shardScoped(s) + "cmdmv:" + s.suffix() + ":" + entry
}

// CommandChannel is the pub/sub channel that wakes the workers when a shard's
// queue has a new command.
func (k Keys) CommandChannel() string { return k.prefix + "cmdev" }

// Presence is the fleet-wide presence every IDENTIFY carries.
func (k Keys) Presence() string { return k.prefix + "presence" }

// The shared state cache (issue 11). Every key of guild G lives under the
// shard that owns G, so the fenced commit script of that shard's events can
// change them in the same script as the stream entry.

// CacheGuildPrefix is the prefix of every cache key of the guilds of shard s:
// a guild's keys are CacheGuildPrefix(s) + guild ID, then the kind's suffix
// below. Scripts that build the keys themselves are given this prefix.
func (k Keys) CacheGuildPrefix(s ShardKey) string { return k.shardScoped(s) + "cache:g:" }

// Cache kinds' suffixes (after CacheGuildPrefix(s) + guild ID).
const (
	CacheSuffixGuild     = ""
	CacheSuffixChannels  = ":channels"
	CacheSuffixRoles     = ":roles"
	CacheSuffixEmojis    = ":emojis"
	CacheSuffixStickers  = ":stickers"
	CacheSuffixMembers   = ":members"
	CacheSuffixVoice     = ":voice"
	CacheSuffixPresences = ":presences"
	CacheSuffixMessages  = ":msgs:" // followed by the channel ID
)

// CacheGuild is guild g's key of the given kind suffix (a CacheSuffix*
// constant; for CacheSuffixMessages append the channel ID).
func (k Keys) CacheGuild(s ShardKey, guild, suffix string) string {
	return k.CacheGuildPrefix(s) + guild + suffix
}

// CacheShardGuilds is the set of guild IDs cached for shard s.
func (k Keys) CacheShardGuilds(s ShardKey) string {
	return k.shardScoped(s) + "cache:shard:" + s.suffix()
}

// CacheKinds is the fleet-wide list of the kinds the cache keeps.
func (k Keys) CacheKinds() string { return k.prefix + "cache:kinds" }
