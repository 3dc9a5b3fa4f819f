package sharding

import (
	"github.com/disgoorg/snowflake/v2"

	"github.com/shardfleet/shardfleet/internal/keyspace"
)

// ShardSplitCount is the default count a shard should be split into when it needs re-sharding.
const ShardSplitCount = 2

// ShardIDByGuild returns the shard ID for the given guildID and shardCount:
// (guildID >> 22) % shardCount, in uint64 as Discord computes it. A shardCount
// of 0 or less has no shards to route to; it returns 0 (never panics).
func ShardIDByGuild(guildID snowflake.ID, shardCount int) int {
	return keyspace.GuildShard(uint64(guildID), shardCount)
}

// ShardKey names one shard of one layout: Discord's [shard_id, num_shards].
// It is the fleet's one shard key, the one its leases and Redis keys use:
// fields ID and Count (JSON {"id":..,"count":..}), and methods
//
//   - Owns(guildID snowflake.ID) bool: guildID is routed to this shard.
//   - Valid() bool: 0 <= ID < Count.
//   - Split(splitCount int) []ShardKey: the shards that replace k when it is
//     split into splitCount, k.ID + j*k.Count for j < splitCount, each of
//     count k.Count*splitCount; their guilds are exactly k's. nil for an
//     invalid k or a splitCount < 2.
//   - Validate() error: Valid, and Count at most keyspace's MaxShardCount.
//   - String() string: "id/count".
type ShardKey = keyspace.ShardKey
