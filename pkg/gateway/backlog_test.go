package gateway_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/disgoorg/snowflake/v2"

	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// gatedHandler records events like recorder, but MESSAGE_CREATE waits for
// open (a handler stuck behind a slow database), and every call samples the
// budget: pushes stop at a pause, so the sample after one is its peak less
// at most the event just handled.
type gatedHandler struct {
	recorder
	gate     chan struct{}
	openOnce sync.Once
	budget   *gateway.BacklogBudget
	peak     atomic.Int64
}

func newGatedHandler(budget *gateway.BacklogBudget) *gatedHandler {
	return &gatedHandler{gate: make(chan struct{}), budget: budget}
}

func (h *gatedHandler) handle(g gateway.Gateway, t gateway.EventType, seq int, data json.RawMessage) {
	if b := h.budget.Stats().Bytes; b > h.peak.Load() {
		h.peak.Store(b)
	}
	if t == "MESSAGE_CREATE" {
		<-h.gate
	}
	h.recorder.handle(g, t, seq, data)
}

func (h *gatedHandler) open() { h.openOnce.Do(func() { close(h.gate) }) }

// paddedEvent is a MESSAGE_CREATE body of about 1 KiB.
func paddedEvent(i int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"n":%d,"content":%q}`, i, strings.Repeat("x", 1000)))
}

const paddedEventMax = 1100 // bytes of d, with room to spare

// paused reports whether each of the shards gs has paused once and stopped
// reading: Disconnected, the status of a shard waiting for its handler, is
// set only once the paused connection has ended. Not a count of the fake's
// closes: on a loaded machine the zombie check (100 ms heartbeats) closes and
// RESUMEs a connection now and then, before or instead of a pause's close.
// While the handlers are stuck a shard cannot pause twice.
func paused(budget *gateway.BacklogBudget, gs ...gateway.Gateway) bool {
	if budget.Stats().Pauses != uint64(len(gs)) {
		return false
	}
	for _, g := range gs {
		if g.Status() != gateway.StatusDisconnected {
			return false
		}
	}
	return true
}

// waitResumed waits until every pause has been answered by a RESUME, every
// shard is READY again and the budget is empty (a count that leaks never
// empties it). Handling the last event does not mean that: the frames that
// bring the backlog to the end can fill the bound once more, and that last
// pause RESUMEs only after the handler has drained it, with a RESUMED still
// to handle.
func waitResumed(t *testing.T, s *gatewaytest.Server, budget *gateway.BacklogBudget, gs []gateway.Gateway) {
	t.Helper()
	eventually(t, "every pause to RESUME and the budget to empty", func() bool {
		for _, g := range gs {
			if g.Status() != gateway.StatusReady {
				return false
			}
		}
		// Pauses counts a pause before its close reaches the fake.
		st := budget.Stats()
		return len(s.Resumes()) >= int(st.Pauses) && len(s.Resumes()) >= len(clientCloses(s)) && st.Bytes == 0
	})
}

// checkBacklogRecovery waits for the shards gs to resume after their last
// pause, then checks what every backlog pause must leave behind: one
// IDENTIFY per shard (no session lost, not even to a heartbeat timeout),
// only resumable closes, one good RESUME (all replayed in order) per
// connection closed, and a closed connection per pause.
func checkBacklogRecovery(t *testing.T, s *gatewaytest.Server, gs []gateway.Gateway, budget *gateway.BacklogBudget) {
	t.Helper()
	waitResumed(t, s, budget, gs)
	if n, shards := s.Stats().Identifies, len(gs); n != shards {
		t.Errorf("%d IDENTIFYs, want %d: a pause must RESUME", n, shards)
	}
	// The fake records one close per connection, the first. Besides a
	// pause's, a loaded machine may delay a heartbeat ACK past the client's
	// zombie check: that close is resumable too, and costs one more RESUME.
	// The fake records its own 4009 instead when its close went out before
	// the client's: "session resumed elsewhere" when the RESUME on the next
	// connection came first, "heartbeat timeout" when a starved process (load
	// average 10 on the 2 cores) took its 2 s to close. A 4009 the client
	// read would cost its session: a second IDENTIFY, which fails above.
	ended, pauseCloses := 0, 0
	for _, c := range s.Closes() {
		switch {
		case c.FromClient && c.Code == gateway.CloseCodeReconnect:
			ended++
			pauseCloses++
		case c.FromClient && c.Code == gateway.CloseCodeZombie, !c.FromClient && c.Code == gateway.CloseSessionTimedOut:
			ended++
		case c.FromClient:
			t.Errorf("client closed with %d, want only %d or %d (resumable)", c.Code, gateway.CloseCodeReconnect, gateway.CloseCodeZombie)
		default:
			t.Errorf("the fake closed a connection: %+v", c)
		}
	}
	// A pause closes its connection unless the zombie check closed it first
	// (the read loop still queues what the socket holds, and can fill the
	// bound): each pause close is a pause, and each pause ends a connection.
	if p := int(budget.Stats().Pauses); p == 0 || p < pauseCloses || p > ended {
		t.Errorf("%d pauses, %d pause closes, %d connections ended: want at least one pause, each pause close a pause, a connection ended per pause",
			p, pauseCloses, ended)
	}
	if okResumes(s) != ended || len(s.Resumes()) != ended {
		t.Errorf("%d connections ended, resumes %+v: want one good RESUME per connection ended", ended, s.Resumes())
	}
	if g := s.Stats().SequenceGaps; g != 0 {
		t.Errorf("fake saw %d sequence gaps", g)
	}
}

// TestBacklogPausesAndResumes: a handler that stops while the fake keeps
// sending fills the shard's bound; the shard closes resumably, lets the
// handler drain, RESUMEs without an IDENTIFY, and every event arrives once,
// in order, with the backlog never over the bound plus one message.
func TestBacklogPausesAndResumes(t *testing.T) {
	const bound, events = 32 << 10, 200
	s := newFake(t)
	budget := gateway.NewBacklogBudget(0) // counts only: the test's probe
	h := newGatedHandler(budget)
	g := gateway.New(s.Token(), h.handle, gateway.WithURL(s.GatewayURL()), gateway.WithLogger(testLogger()),
		gateway.WithBacklogBytes(bound), gateway.WithBacklogBudget(budget))
	t.Cleanup(func() { g.Close(t.Context()) })
	open(t, g)
	for i := range events {
		s.Dispatch("MESSAGE_CREATE", 0, paddedEvent(i))
	}
	eventually(t, "the shard to pause", func() bool { return paused(budget, g) })
	if b := budget.Stats().Bytes; b > bound+paddedEventMax {
		t.Fatalf("backlog %d bytes at the pause, over the bound %d + one message", b, bound)
	}
	if n := h.count("MESSAGE_CREATE"); n != 0 {
		t.Fatalf("%d MESSAGE_CREATEs handled while the handler is stuck", n)
	}
	h.open()
	eventually(t, "every event", func() bool { return h.count("MESSAGE_CREATE") == events })
	checkBacklogRecovery(t, s, []gateway.Gateway{g}, budget)
	checkSequence(t, h.snapshot())
	if p := h.peak.Load(); p > bound+paddedEventMax {
		t.Errorf("backlog peaked at %d bytes, over the bound %d + one message", p, bound)
	}
	if st := budget.Stats(); st.FramesRead != uint64(h.calls.Load()) {
		t.Errorf("%d frames read, want %d: every one delivered once", st.FramesRead, h.calls.Load())
	}
}

// TestBacklogBudgetSharedByShards: three shards share a budget far below
// their own bounds; the shards that find it spent pause, the total stays
// bounded, and everything arrives once the handlers drain.
func TestBacklogBudgetSharedByShards(t *testing.T) {
	const shards, limit, events = 3, 48 << 10, 100
	s := newFake(t)
	budget := gateway.NewBacklogBudget(limit)
	handlers := make([]*gatedHandler, shards)
	gs := make([]gateway.Gateway, shards)
	for id := range shards {
		h := newGatedHandler(budget)
		handlers[id] = h
		g := gateway.New(s.Token(), h.handle, gateway.WithURL(s.GatewayURL()), gateway.WithLogger(testLogger()),
			gateway.WithShardID(id), gateway.WithShardCount(shards),
			gateway.WithBacklogBytes(1<<20), gateway.WithBacklogBudget(budget))
		t.Cleanup(func() { g.Close(t.Context()) })
		open(t, g)
		gs[id] = g
	}
	for i := range events {
		for id := range shards {
			// (guild >> 22) % shards routes the event to shard id; guild 0 is shard 0.
			s.Dispatch("MESSAGE_CREATE", snowflake.ID(id<<22), paddedEvent(i))
		}
	}
	eventually(t, "every shard to pause", func() bool { return paused(budget, gs...) })
	if b := budget.Stats().Bytes; b > limit+shards*paddedEventMax {
		t.Fatalf("budget holds %d bytes, over its limit %d + one message per shard", b, limit)
	}
	for _, h := range handlers {
		h.open()
	}
	for id, h := range handlers {
		eventually(t, fmt.Sprintf("every event of shard %d", id), func() bool { return h.count("MESSAGE_CREATE") == events })
		checkSequence(t, h.snapshot())
		if p := h.peak.Load(); p > limit+shards*paddedEventMax {
			t.Errorf("shard %d saw the budget at %d bytes, over its limit %d + one message per shard", id, p, limit)
		}
	}
	checkBacklogRecovery(t, s, gs, budget)
}
