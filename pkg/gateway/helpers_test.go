package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// Compressed timings for tests.
const (
	testHeartbeat = 100 * time.Millisecond
	waitLimit     = 10 * time.Second
)

// newFake starts a fake Discord with test timings; it is closed at cleanup.
func newFake(t testing.TB, opts ...gatewaytest.Option) *gatewaytest.Server {
	t.Helper()
	base := []gatewaytest.Option{
		gatewaytest.WithHeartbeatInterval(testHeartbeat),
		// Generous: a loaded CI machine must not turn scheduling delays into 4009s.
		gatewaytest.WithHeartbeatTimeout(2*time.Second, gateway.CloseSessionTimedOut),
		gatewaytest.WithIdentifyWindow(time.Millisecond),
		gatewaytest.WithResumeTimeout(time.Minute),
		gatewaytest.WithGuilds(3),
	}
	s := gatewaytest.NewServer(append(base, opts...)...)
	t.Cleanup(s.Close)
	return s
}

func testLogger() *slog.Logger {
	if os.Getenv("GATEWAY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newShard builds a gateway against s with test timings; it is closed at cleanup.
func newShard(t testing.TB, s *gatewaytest.Server, rec *recorder, opts ...gateway.ConfigOpt) gateway.Gateway {
	t.Helper()
	base := []gateway.ConfigOpt{
		gateway.WithURL(s.GatewayURL()),
		gateway.WithLogger(testLogger()),
		gateway.WithReconnectBackoff(5*time.Millisecond, 50*time.Millisecond),
		gateway.WithCloseTimeout(time.Second),
		gateway.WithHelloTimeout(5 * time.Second),
	}
	var handler gateway.EventHandlerFunc
	if rec != nil {
		handler = rec.handle
	}
	g := gateway.New(s.Token(), handler, append(base, opts...)...)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.Close(ctx)
	})
	return g
}

func open(t testing.TB, g gateway.Gateway) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := g.Open(ctx); err != nil {
		t.Fatalf("Open: %v", err)
	}
}

// event is one call of the event handler.
type event struct {
	t    gateway.EventType
	seq  int
	data json.RawMessage
}

// recorder is an EventHandlerFunc that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []event
	calls  atomic.Int64
}

func (r *recorder) handle(_ gateway.Gateway, t gateway.EventType, seq int, data json.RawMessage) {
	r.mu.Lock()
	r.events = append(r.events, event{t, seq, data})
	r.mu.Unlock()
	r.calls.Add(1)
}

func (r *recorder) snapshot() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event(nil), r.events...)
}

func (r *recorder) count(t gateway.EventType) int {
	n := 0
	for _, e := range r.snapshot() {
		if e.t == t {
			n++
		}
	}
	return n
}

// eventually polls cond until it holds or waitLimit passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			if os.Getenv("GATEWAY_TEST_LOG") != "" {
				_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkSequence fails unless the events' seqs follow each other: no gap, no
// duplicate, in order.
func checkSequence(t testing.TB, events []event) {
	t.Helper()
	checkSequenceAfterHandoff(t, events, math.MaxInt)
}

// checkSequenceAfterHandoff is checkSequence for a shard reopened after a
// Handoff that returned the resume point from: no gap, and an event
// delivered twice only if it came after from (a Handoff while a callback
// runs drops what is queued and returns the last event handled, so the
// RESUME replays the rest: Handoff's "at worst an event is delivered twice").
func checkSequenceAfterHandoff(t testing.TB, events []event, from int) {
	t.Helper()
	high := 0 // the highest seq delivered so far
	for i, e := range events {
		switch {
		case i == 0 || e.seq == high+1:
			high = e.seq
		case e.seq > from && e.seq <= high:
			// replayed after the Handoff
		default:
			allowed := ""
			if from != math.MaxInt {
				allowed = fmt.Sprintf(" (a duplicate only past the resume point %d)", from)
			}
			t.Fatalf("event %d (%s) has seq %d after %d: gap or duplicate%s", i, e.t, e.seq, high, allowed)
		}
	}
}

// countingLimiter is an IdentifyLimiter that counts permits and checks that
// every WaitBucket is matched by exactly one UnlockBucket.
type countingLimiter struct {
	waits, unlocks atomic.Int64
	held           atomic.Int64
	violations     atomic.Int64
}

func (l *countingLimiter) WaitBucket(ctx context.Context, shardID int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.waits.Add(1)
	if l.held.Add(1) != 1 {
		l.violations.Add(1)
	}
	return nil
}

func (l *countingLimiter) UnlockBucket(shardID int) {
	l.unlocks.Add(1)
	if l.held.Add(-1) != 0 {
		l.violations.Add(1)
	}
}

var _ gateway.IdentifyLimiter = (*countingLimiter)(nil)

// closeCall is one CloseHandler call.
type closeCall struct {
	err       error
	reconnect bool
}

type closeRecorder struct {
	mu    sync.Mutex
	calls []closeCall
}

func (c *closeRecorder) handle(_ gateway.Gateway, err error, reconnect bool) {
	c.mu.Lock()
	c.calls = append(c.calls, closeCall{err, reconnect})
	c.mu.Unlock()
}

func (c *closeRecorder) snapshot() []closeCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]closeCall(nil), c.calls...)
}
