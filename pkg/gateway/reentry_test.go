package gateway_test

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// TestHandlerMayCloseItsOwnShard: Close called from inside the event handler
// must not wait for the callback it runs in.
func TestHandlerMayCloseItsOwnShard(t *testing.T) {
	s := newFake(t)
	closed := make(chan struct{})
	handler := func(g gateway.Gateway, typ gateway.EventType, _ int, _ json.RawMessage) {
		if typ == "MESSAGE_CREATE" {
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			g.Close(ctx)
			if ctx.Err() != nil {
				t.Error("Close from the handler waited for its ctx")
			}
			close(closed)
		}
	}
	g := gateway.New(s.Token(), handler, gateway.WithURL(s.GatewayURL()), gateway.WithLogger(testLogger()))
	open(t, g)
	s.Dispatch("MESSAGE_CREATE", 0, map[string]int{"n": 1})
	select {
	case <-closed:
	case <-time.After(waitLimit):
		t.Fatal("handler's Close did not return")
	}
	g.Close(context.Background()) // waits for the handler to return
	if g.Status() != gateway.StatusDisconnected {
		t.Fatalf("status %s", g.Status())
	}
}

// TestCloseHandlerMayCloseTheShard: the close handler runs on the dispatcher
// too; closing the stopped shard from it must not deadlock Open.
func TestCloseHandlerMayCloseTheShard(t *testing.T) {
	s := newFake(t)
	var g gateway.Gateway
	onClose := func(gw gateway.Gateway, _ error, _ bool) {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		gw.Close(ctx)
	}
	g = gateway.New("bad-token", nil, gateway.WithURL(s.GatewayURL()), gateway.WithLogger(testLogger()),
		gateway.WithCloseHandler(onClose))
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := g.Open(ctx); !gateway.IsFatal(err) {
		t.Fatalf("Open: %v, want a fatal close", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Open deadlocked with the close handler")
	}
}

func TestHandoffThenReopenResumes(t *testing.T) {
	s := newFake(t)
	rec := &recorder{}
	g := newShard(t, s, rec)
	open(t, g)
	st := g.Handoff(context.Background())
	if !st.Resumable() || g.SessionID() == nil {
		t.Fatalf("handoff dropped the session: %+v", st)
	}
	s.Dispatch("MESSAGE_CREATE", 0, map[string]int{"n": 1})
	open(t, g)
	eventually(t, "the missed event", func() bool { return rec.count("MESSAGE_CREATE") == 1 })
	if okResumes(s) != 1 || len(s.Identifies()) != 1 {
		t.Fatalf("reopen after Handoff: %d resumes, %d identifies, want 1 and 1", okResumes(s), len(s.Identifies()))
	}
	// The Handoff may catch the READY or a GUILD_CREATE callback running.
	checkSequenceAfterHandoff(t, rec.snapshot(), st.Sequence)
}

// TestNoZombieWhileDataFlows: with ACKs held back but dispatches arriving,
// the connection is alive and must not be closed as a zombie.
func TestNoZombieWhileDataFlows(t *testing.T) {
	s := newFake(t, gatewaytest.WithHeartbeatInterval(200*time.Millisecond),
		gatewaytest.WithHeartbeatTimeout(time.Hour, gateway.CloseSessionTimedOut))
	rec := &recorder{}
	g := newShard(t, s, rec)
	open(t, g)
	s.SetAckHeartbeats(false)
	for i := range 60 { // 10 ms apart: many dispatches between every two beats
		s.Dispatch("MESSAGE_CREATE", 0, map[string]int{"n": i})
		time.Sleep(10 * time.Millisecond)
	}
	if codes := clientCloses(s); len(codes) != 0 {
		t.Fatalf("client closed %v while data was flowing", codes)
	}
	s.SetAckHeartbeats(true)
}

// slowSecondPermit grants the first permit at once and later ones after a
// delay, like a real limiter pacing a bucket.
type slowSecondPermit struct {
	countingLimiter
	delay time.Duration
}

func (l *slowSecondPermit) WaitBucket(ctx context.Context, shardID int) error {
	if l.waits.Load() > 0 {
		t := time.NewTimer(l.delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return l.countingLimiter.WaitBucket(ctx, shardID)
}

// TestInvalidSessionDuringOpenIsRetried: an IDENTIFY that comes too soon for
// its rate-limit key gets op 9 false; Open keeps going (a new permit, a new
// IDENTIFY) and returns once READY.
func TestInvalidSessionDuringOpenIsRetried(t *testing.T) {
	s := newFake(t, gatewaytest.WithIdentifyWindow(300*time.Millisecond), gatewaytest.WithShards(2))
	g0 := newShard(t, s, nil, gateway.WithShardID(0), gateway.WithShardCount(2))
	open(t, g0)
	lim := &slowSecondPermit{delay: 400 * time.Millisecond}
	g1 := newShard(t, s, nil, gateway.WithShardID(1), gateway.WithShardCount(2), gateway.WithIdentifyLimiter(lim))
	open(t, g1)
	if st := s.Stats(); st.IdentifyViolations != 1 {
		t.Fatalf("%d identify violations, want 1 (the test needs one op 9 false during Open)", st.IdentifyViolations)
	}
	if lim.waits.Load() != 2 {
		t.Fatalf("%d permits, want 2", lim.waits.Load())
	}
}

// TestHandoffWhileAHandlerRunsThenReopenLosesNothing: a Handoff from
// another goroutine while the handler is busy with an event drops the
// events queued behind it and returns the sequence of the last one handled.
// Reopening the same gateway must RESUME from there too, so the fake
// replays the dropped events; RESUMEing from the last one received lost
// them (seen as a gap in TestHandoffThenReopenResumes under load, when the
// Handoff caught the READY callback).
func TestHandoffWhileAHandlerRunsThenReopenLosesNothing(t *testing.T) {
	s := newFake(t)
	rec := &recorder{}
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	handler := func(g gateway.Gateway, typ gateway.EventType, seq int, d json.RawMessage) {
		rec.handle(g, typ, seq, d)
		if typ == "MESSAGE_CREATE" {
			once.Do(func() {
				close(entered)
				<-release
			})
		}
	}
	g := gateway.New(s.Token(), handler, gateway.WithURL(s.GatewayURL()), gateway.WithLogger(testLogger()),
		gateway.WithReconnectBackoff(5*time.Millisecond, 50*time.Millisecond))
	t.Cleanup(func() { g.Close(context.Background()) })
	open(t, g)
	for i := range 3 {
		s.Dispatch("MESSAGE_CREATE", 0, map[string]int{"n": i})
	}
	<-entered // the handler holds the first MESSAGE_CREATE
	eventually(t, "the other two MESSAGE_CREATEs received", func() bool {
		last := g.LastSequenceReceived()
		return last != nil && *last == s.Stats().DispatchesSent // one session: its seqs are 1..sent
	})
	st := g.Handoff(context.Background())
	close(release)
	if !st.Resumable() {
		t.Fatalf("handoff dropped the session: %+v", st)
	}
	if last := g.LastSequenceReceived(); last == nil || *last != st.Sequence {
		from := "nothing"
		if last != nil {
			from = strconv.Itoa(*last)
		}
		t.Errorf("after Handoff the gateway would RESUME from %s, the returned state from %d", from, st.Sequence)
	}
	open(t, g)
	eventually(t, "every MESSAGE_CREATE handled", func() bool {
		seen := map[string]bool{}
		for _, e := range rec.snapshot() {
			if e.t == "MESSAGE_CREATE" {
				seen[string(e.data)] = true
			}
		}
		return len(seen) == 3
	})
	checkSequenceAfterHandoff(t, rec.snapshot(), st.Sequence)
}
