package worker

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/pkg/fleet"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// handled is an EventHandler recording what it was given.
type handled struct {
	mu  sync.Mutex
	evs []string
}

func (h *handled) handle(e fleet.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.evs = append(h.evs, eventName(e.Shard, e.Count, e.Session, e.Seq))
}

func eventName(shard, count int, session string, seq int) string {
	return strconv.Itoa(shard) + "/" + strconv.Itoa(count) + " " + session + " " + strconv.Itoa(seq)
}

// TestFleetHandlerSeesExactlyTheCommittedEvents: the owner of a running
// shard goes stale (its membership lapses), so its writer's commits are
// refused until it sees the loss and stops the shard; it then joins again,
// wins the shard back and RESUMEs from the committed seq, which replays what
// was refused. The handler must have seen exactly the stream: each
// event once, in order, none of the refused ones.
func TestFleetHandlerSeesExactlyTheCommittedEvents(t *testing.T) {
	h := newHarness(t, 1, gatewaytest.WithEventsPerSecond(500))
	var got handled
	cfg := h.config("w1", 1)
	cfg.EventHandler = got.handle
	w1 := h.start(cfg)
	eventually(t, "w1 READY", 20*time.Second, func() bool { return readyShards(w1) == 1 })
	c := h.redis.Client(t)
	ctx := context.Background()
	keys := lease.NewKeys(testPrefix)
	eventually(t, "events committed", 10*time.Second, func() bool {
		n, err := c.XLen(ctx, keys.Events(0)).Result()
		return err == nil && n > 50
	})

	// w1's membership lapses (as for a process frozen past its TTL): its
	// writes are fenced until its session sees it, ends every lease and
	// joins again.
	if err := c.Del(ctx, keys.Member("w1")).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the sink to refuse w1's writes", 10*time.Second, func() bool { return w1.w.sink.Stats().Rejected > 0 })
	eventually(t, "w1 to win the shard back", 20*time.Second, func() bool { return readyShards(w1) == 1 && w1.w.Ready() })
	h.checkStream(t)

	msgs, err := c.XRange(ctx, keys.Events(0), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var stream []string
	for _, m := range msgs {
		shardID, _ := strconv.Atoi(m.Values["shard"].(string))
		count, _ := strconv.Atoi(m.Values["count"].(string))
		seq, _ := strconv.Atoi(m.Values["seq"].(string))
		stream = append(stream, eventName(shardID, count, m.Values["session"].(string), seq))
	}
	// A batch is handed to the handler after its commit script returns, so
	// the last one can be in Redis a moment before the handler has it.
	handledCount := func() int { got.mu.Lock(); defer got.mu.Unlock(); return len(got.evs) }
	eventually(t, "the handler to catch up with the stream", 10*time.Second, func() bool { return handledCount() >= len(stream) })
	got.mu.Lock()
	defer got.mu.Unlock()
	if !slices.Equal(got.evs, stream) {
		t.Fatalf("the handler saw %d events, the stream holds %d; first difference at %d:\nhandler %v\nstream  %v",
			len(got.evs), len(stream), firstDiff(got.evs, stream), got.evs, stream)
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
