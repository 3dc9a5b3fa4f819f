package lease

import (
	"strconv"
	"strings"
)

// DefaultPrefix is the key prefix used when Config.Prefix is empty.
const DefaultPrefix = "{shardfleet}:"

// Keys names a fleet's Redis keys. The zero value is not usable: build it with
// NewKeys. All keys share the prefix's {hash tag}, so they live in one Redis
// Cluster slot and one Lua script may touch any of them.
//
// The schema is shared with the worker's event sink; fields and keys may be
// added, never changed:
//
//	P member:<worker_id>          STRING  JSON MemberInfo, PX = TTL, renewed by the keep-alive
//	P lease:<count>:<shard_id>    HASH    owner, token (decimal uint64), req (claim request id)
//	P session:<count>:<shard_id>  HASH    session_id, seq, resume_url, token (fenced writes)
//	P members                     ZSET    worker_id -> expiry (server ms); membership truth is member:*
//	P members:since               ZSET    worker_id -> join time (server ms)
//	P epoch                       STRING  random data-loss detector
//	P grace                       STRING  present (PX) while the data-loss grace runs
//	P fence                       STRING  last fencing token issued
//	P layout                      HASH    version, data (JSON of the Layout)
//	P events, P events:dedup...   owned by the worker's event sink
//
// A lease with token T held by W is valid iff HGET token == T, HGET owner == W
// and EXISTS P member:W.
type Keys struct {
	prefix string
}

// NewKeys returns the keys for prefix. An empty prefix is DefaultPrefix; a
// prefix without a {hash tag} is wrapped in one ("app" becomes "{app}:").
func NewKeys(prefix string) Keys { return Keys{prefix: NormalizePrefix(prefix)} }

// NormalizePrefix applies NewKeys' rules to a prefix.
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

// Prefix is the normalized prefix, with its hash tag.
func (k Keys) Prefix() string { return k.prefix }

// Member is the liveness key of a worker.
func (k Keys) Member(workerID string) string { return k.prefix + "member:" + workerID }

// Members is the membership index (ZSET worker_id -> expiry, server ms).
func (k Keys) Members() string { return k.prefix + "members" }

// MembersSince is the join-time index (ZSET worker_id -> join time, server ms).
func (k Keys) MembersSince() string { return k.prefix + "members:since" }

// Lease is the ownership hash of a shard.
func (k Keys) Lease(s ShardKey) string { return k.prefix + "lease:" + s.suffix() }

// Session is the resumable Discord session of a shard.
func (k Keys) Session(s ShardKey) string { return k.prefix + "session:" + s.suffix() }

// Epoch is the data-loss detector.
func (k Keys) Epoch() string { return k.prefix + "epoch" }

// Grace is present while the data-loss grace runs.
func (k Keys) Grace() string { return k.prefix + "grace" }

// Fence holds the last fencing token issued.
func (k Keys) Fence() string { return k.prefix + "fence" }

// Layout is the fleet layout.
func (k Keys) Layout() string { return k.prefix + "layout" }

// Events is the event stream (owned by the worker's event sink).
func (k Keys) Events() string { return k.prefix + "events" }

func (s ShardKey) suffix() string {
	return strconv.Itoa(s.Count) + ":" + strconv.Itoa(s.ID)
}
