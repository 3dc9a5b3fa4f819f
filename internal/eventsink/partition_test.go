package eventsink

import (
	"context"
	"errors"
	"testing"

	"github.com/shardfleet/shardfleet/internal/lease"
)

// TestCommitGoesToThePartitionsStream: with 4 partitions, a shard's events go
// to its partition's stream, fenced by the holder's liveness mirror there (a
// member key elsewhere does not make the write valid).
func TestCommitGoesToThePartitionsStream(t *testing.T) {
	c := startRedis(t)
	s := newSink(t, c, WithPartitions(4))
	k := s.Keys()
	ctx := context.Background()
	shard, fence := Shard{ID: 6, Count: 8}, Fence{"w1", 1700000000000001}
	if err := c.HSet(ctx, k.Lease(shard), "owner", fence.WorkerID, "token", "1700000000000001").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, k.Member(fence.WorkerID), "{}", 0).Err(); err != nil { // fleet-wide only
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, shard, fence, events("S1", 1, 3)); !errors.Is(err, ErrFenced) {
		t.Fatalf("commit without the partition's mirror: %v, want ErrFenced", err)
	}
	if err := c.Set(ctx, k.ShardMember(shard, fence.WorkerID), "{}", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Commit(ctx, shard, fence, events("S1", 1, 3)); err != nil || r.Committed != 3 {
		t.Fatalf("commit: %+v, %v", r, err)
	}
	for p := range 4 {
		n, err := c.XLen(ctx, k.Events(p)).Result()
		if want := map[bool]int64{true: 3, false: 0}[p == 6%4]; err != nil || n != want {
			t.Fatalf("partition %d's stream holds %d events (%v), want %d", p, n, err, want)
		}
	}
	if k.ShardEvents(shard) == lease.NewKeys(prefix).Events(0) {
		t.Fatal("the partition's stream is the single-tag stream")
	}
}
