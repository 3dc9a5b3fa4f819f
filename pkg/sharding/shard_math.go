package sharding

import "github.com/disgoorg/snowflake/v2"

// ShardSplitCount is the default count a shard should be split into when it needs re-sharding.
const ShardSplitCount = 2

// ShardIDByGuild returns the shard ID for the given guildID and shardCount:
// (guildID >> 22) % shardCount, in uint64 as Discord computes it. A shardCount
// of 0 or less has no shards to route to; it returns 0 (never panics).
func ShardIDByGuild(guildID snowflake.ID, shardCount int) int {
	if shardCount <= 0 {
		return 0
	}
	return int((uint64(guildID) >> 22) % uint64(shardCount))
}

// ShardKey names one shard of one layout: Discord's [shard_id, num_shards].
type ShardKey struct {
	ID    int `json:"shard_id"`
	Count int `json:"shard_count"`
}

// Owns reports whether guildID is routed to this shard.
func (k ShardKey) Owns(guildID snowflake.ID) bool {
	return k.Count > 0 && ShardIDByGuild(guildID, k.Count) == k.ID
}

// Valid reports whether 0 <= ID < Count.
func (k ShardKey) Valid() bool { return k.Count > 0 && k.ID >= 0 && k.ID < k.Count }

// Split returns the shards that replace k when it is split into splitCount:
// k.ID + j*k.Count for j < splitCount, each of count k.Count*splitCount. Their
// guilds are exactly k's. It returns nil for an invalid k or a splitCount < 2.
func (k ShardKey) Split(splitCount int) []ShardKey {
	if !k.Valid() || splitCount < 2 {
		return nil
	}
	out := make([]ShardKey, splitCount)
	for j := range out {
		out[j] = ShardKey{ID: k.ID + j*k.Count, Count: k.Count * splitCount}
	}
	return out
}
