package fleet

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/internal/redistest"
)

// addEvents appends n events as the fleet's sink writes them.
func addEvents(t *testing.T, rc *redis.Client, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := rc.XAdd(context.Background(), &redis.XAddArgs{Stream: keyspace.NewKeys("").Events(0), Values: []any{
			"shard", 1, "count", 2, "seq", i, "session", "S", "type", "MESSAGE_CREATE", "data", `{"n":` + strconv.Itoa(i) + `}`, "fence", 7}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func seqs(evs []Event) []int {
	out := make([]int, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

// TestConsumerGroup: a group created at the start of the stream delivers
// typed events in bounded batches; what a consumer read and did not ack it
// gets back after a restart, and another consumer takes it over once idle.
func TestConsumerGroup(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client(t)
	ctx := context.Background()
	addEvents(t, rc, 1, 5)
	c := NewClient(rc, "")
	a, err := c.Consume(ctx, ConsumerConfig{Group: "bot", Name: "a", Prefetch: 2, Block: 10 * time.Millisecond,
		ClaimIdle: time.Hour, StartAtBeginning: true})
	if err != nil {
		t.Fatal(err)
	}
	first, err := a.Next(ctx)
	if err != nil || len(first) != 2 || first[0].Seq != 1 || first[0].Shard != 1 || first[0].Count != 2 ||
		first[0].Session != "S" || first[0].Type != "MESSAGE_CREATE" || string(first[0].Data) != `{"n":1}` {
		t.Fatalf("first batch %+v, %v", first, err)
	}
	if err := a.Ack(ctx, first[0]); err != nil {
		t.Fatal(err)
	}
	// "a" restarts: it first gets back seq 2 (read, not acked), then new ones.
	a2, err := c.Consume(ctx, ConsumerConfig{Group: "bot", Name: "a", Prefetch: 2, Block: 10 * time.Millisecond, ClaimIdle: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if evs, err := a2.Next(ctx); err != nil || len(evs) != 1 || evs[0].Seq != 2 {
		t.Fatalf("after a restart: %v, %v; want its unacked seq 2", seqs(evs), err)
	}
	if evs, err := a2.Next(ctx); err != nil || len(evs) != 2 || evs[0].Seq != 3 {
		t.Fatalf("then: %v, %v; want 3 and 4", seqs(evs), err)
	}
	// "b" takes over what "a" left unacked (2, 3, 4) once it is idle.
	b, err := c.Consume(ctx, ConsumerConfig{Group: "bot", Name: "b", Prefetch: 10, Block: 10 * time.Millisecond, ClaimIdle: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < 4 && time.Now().Before(deadline) {
		evs, err := b.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, seqs(evs)...)
		if err := b.Ack(ctx, evs...); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []int{2, 3, 4, 5}) {
		t.Fatalf("b got %v; want 2, 3, 4 taken over and the new 5", got)
	}
	pending, err := rc.XPending(ctx, keyspace.NewKeys("").Events(0), "bot").Result()
	if err != nil || pending.Count != 0 {
		t.Fatalf("pending after every ack: %+v, %v", pending, err)
	}
	if _, err := c.Consume(ctx, ConsumerConfig{Group: "bot"}); err == nil {
		t.Fatal("a consumer without a name was accepted")
	}
}
