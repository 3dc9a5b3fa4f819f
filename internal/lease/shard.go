package lease

import (
	"cmp"

	"github.com/shardfleet/shardfleet/internal/keyspace"
)

// MaxShardCount bounds a shard count (see keyspace.MaxShardCount).
const MaxShardCount = keyspace.MaxShardCount

// ShardKey names one shard of a layout (see keyspace.ShardKey).
type ShardKey = keyspace.ShardKey

// compareShards orders keys by count, then ID (for slices.SortFunc).
func compareShards(a, b ShardKey) int {
	return cmp.Or(cmp.Compare(a.Count, b.Count), cmp.Compare(a.ID, b.ID))
}
