package keyspace

import "github.com/disgoorg/snowflake/v2"

// The shard maths of ShardKey: one rule for a guild's shard and one for a
// split, used by pkg/sharding (whose ShardKey is this type), internal/lease's
// layout and pkg/fleet.

// GuildShard is Discord's routing: (guildID >> 22) % count, in uint64 as
// Discord computes it. A count of 0 or less has no shards to route to; it
// returns 0 (never panics).
func GuildShard(guildID uint64, count int) int {
	if count <= 0 {
		return 0
	}
	return int((guildID >> 22) % uint64(count))
}

// Owns reports whether guildID is routed to this shard.
func (k ShardKey) Owns(guildID snowflake.ID) bool {
	return k.Count > 0 && GuildShard(uint64(guildID), k.Count) == k.ID
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
