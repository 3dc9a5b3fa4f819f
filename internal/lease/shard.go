package lease

import (
	"cmp"
	"fmt"
)

// MaxShardCount bounds a shard count (Discord's largest bots run tens of
// thousands of shards; this keeps layout maths far from int overflow).
const MaxShardCount = 1 << 20

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

// compareShards orders keys by count, then ID (for slices.SortFunc).
func compareShards(a, b ShardKey) int {
	return cmp.Or(cmp.Compare(a.Count, b.Count), cmp.Compare(a.ID, b.ID))
}
