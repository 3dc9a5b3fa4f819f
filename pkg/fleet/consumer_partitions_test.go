package fleet

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/internal/redistest"
)

// TestConsumerReadsEveryPartition: a fleet of 16 partitions has 16 streams
// (on a Redis Cluster of 3 masters, in 16 slots, read one by one; on one
// Redis, read in one XREADGROUP); one consumer gets every event of every
// shard, each shard's in commit order, and acks them all.
func TestConsumerReadsEveryPartition(t *testing.T) {
	t.Run("cluster", func(t *testing.T) {
		cl := redistest.StartCluster(t, 3)
		readEveryPartition(t, cl.Client(t))
	})
	t.Run("single", func(t *testing.T) { readEveryPartition(t, redistest.Start(t).Client(t)) })
}

func readEveryPartition(t *testing.T, cc redis.UniversalClient) {
	ctx := context.Background()
	keys, err := lease.ResolvePartitions(ctx, cc, keyspace.NewKeys(""), keyspace.ClusterPartitions)
	if err != nil {
		t.Fatal(err)
	}
	const shards, perShard = 20, 7
	add := func(from int) {
		for seq := from; seq < from+perShard; seq++ {
			for id := range shards {
				s := keyspace.ShardKey{ID: id, Count: shards}
				if err := cc.XAdd(ctx, &redis.XAddArgs{Stream: keys.ShardEvents(s), Values: []any{
					"shard", id, "count", shards, "seq", seq, "session", "S" + strconv.Itoa(id),
					"type", "MESSAGE_CREATE", "data", "{}", "fence", 1}}).Err(); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	add(1)
	c := NewClient(cc, "")
	k, err := c.Consume(ctx, ConsumerConfig{Group: "bot", Name: "a", Prefetch: 5, Block: 20 * time.Millisecond,
		ClaimIdle: time.Hour, StartAtBeginning: true})
	if err != nil {
		t.Fatal(err)
	}
	got := map[int][]int{}
	read := func(total int) {
		n := 0
		deadline := time.Now().Add(10 * time.Second)
		for n < total && time.Now().Before(deadline) {
			evs, err := k.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				got[e.Shard] = append(got[e.Shard], e.Seq)
			}
			n += len(evs)
			if err := k.Ack(ctx, evs...); err != nil {
				t.Fatal(err)
			}
		}
	}
	read(shards * perShard)
	add(perShard + 1) // after the consumer caught up: new events, read by ">"
	read(shards * perShard)
	for id := range shards {
		want := make([]int, 2*perShard)
		for i := range want {
			want[i] = i + 1
		}
		if !slices.Equal(got[id], want) {
			t.Fatalf("shard %d: seqs %v, want 1..%d in order", id, got[id], 2*perShard)
		}
	}
	for p := range keys.Partitions() {
		pending, err := cc.XPending(ctx, keys.Events(p), "bot").Result()
		if err != nil || pending.Count != 0 {
			t.Fatalf("partition %d pending after every ack: %+v, %v", p, pending, err)
		}
	}
}
