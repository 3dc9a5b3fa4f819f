package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// TestResumeReplaysMissedEventsInOrder drops the TCP connection, dispatches
// while the shard is away, and checks that the RESUME replays exactly the
// missed events: every seq once, in order.
func TestResumeReplaysMissedEventsInOrder(t *testing.T) {
	for _, c := range []gateway.Compression{gateway.CompressionNone, gateway.CompressionZlibStream} {
		t.Run(string(c)+"_", func(t *testing.T) {
			s := newFake(t)
			rec := &recorder{}
			g := newShard(t, s, rec, gateway.WithCompression(c),
				gateway.WithReconnectBackoff(50*time.Millisecond, 100*time.Millisecond))
			open(t, g)
			for i := range 20 {
				s.Dispatch("MESSAGE_CREATE", 0, map[string]int{"n": i})
			}
			// The drop is queued on the connection's writer, so the events
			// dispatched right after it are never written to that connection:
			// only the RESUME's replay can deliver them. (Waiting to see the
			// session disconnected instead raced the 50 ms reconnect.)
			if n := s.DropConnections(0); n != 1 {
				t.Fatalf("dropped %d connections, want 1", n)
			}
			for i := 20; i < 120; i++ {
				s.Dispatch("MESSAGE_CREATE", 0, map[string]int{"n": i})
			}
			eventually(t, "the fake to record the drop", func() bool {
				for _, c := range s.Closes() {
					if c.Code == 1006 && !c.FromClient {
						return true
					}
				}
				return false
			})
			eventually(t, "120 events and RESUMED", func() bool {
				return rec.count("MESSAGE_CREATE") == 120 && rec.count(gateway.EventTypeResumed) == 1
			})
			checkSequence(t, rec.snapshot())
			if okResumes(s) != 1 || s.Resumes()[0].Replayed == 0 {
				t.Fatalf("resumes %+v: want one that replayed the missed events", s.Resumes())
			}
			if st := s.Stats(); st.SequenceGaps != 0 {
				t.Fatalf("fake saw %d sequence gaps", st.SequenceGaps)
			}
		})
	}
}

// TestHandoffThenColdResume hands a session from one gateway to a new one
// (as a new owner process would): the new one RESUMEs without IDENTIFY and
// gets every event the old one did not, with no gap.
func TestHandoffThenColdResume(t *testing.T) {
	s := newFake(t)
	rec1 := &recorder{}
	g1 := newShard(t, s, rec1)
	open(t, g1)
	for i := range 10 {
		s.Dispatch("MESSAGE_CREATE", 0, map[string]int{"n": i})
	}
	eventually(t, "10 events on the first owner", func() bool { return rec1.count("MESSAGE_CREATE") == 10 })
	st := g1.Handoff(context.Background())
	if !st.Resumable() || st.ResumeURL == "" || st.Sequence == 0 {
		t.Fatalf("handoff state %+v", st)
	}
	eventually(t, "the fake to record the handoff close", func() bool {
		codes := clientCloses(s)
		return len(codes) == 1 && codes[0] == gateway.CloseCodeHandoff
	})
	for i := 10; i < 30; i++ { // while nobody is connected
		s.Dispatch("MESSAGE_CREATE", 0, map[string]int{"n": i})
	}
	rec2 := &recorder{}
	g2 := newShard(t, s, rec2, gateway.WithShardState(st))
	open(t, g2)
	eventually(t, "20 events on the new owner", func() bool { return rec2.count("MESSAGE_CREATE") == 20 })
	if n := len(s.Identifies()); n != 1 {
		t.Fatalf("%d identifies, want 1: a cold resume must not IDENTIFY", n)
	}
	checkSequence(t, append(rec1.snapshot(), rec2.snapshot()...))
	if *g2.SessionID() != st.SessionID {
		t.Fatal("new owner has another session")
	}
}

// TestHandoffWithBusyHandlerReportsDeliveredSequence: when the handler has
// not finished what was received, the state points before the undelivered
// events, so the next owner's RESUME replays them.
func TestHandoffWithBusyHandlerReportsDeliveredSequence(t *testing.T) {
	s := newFake(t)
	release := make(chan struct{})
	var mu sync.Mutex
	var delivered []int
	handler := func(_ gateway.Gateway, typ gateway.EventType, seq int, _ json.RawMessage) {
		if typ == "MESSAGE_CREATE" {
			<-release
		}
		mu.Lock()
		delivered = append(delivered, seq)
		mu.Unlock()
	}
	g := gateway.New(s.Token(), handler, gateway.WithURL(s.GatewayURL()), gateway.WithLogger(testLogger()))
	open(t, g)
	for i := range 5 {
		s.Dispatch("MESSAGE_CREATE", 0, map[string]int{"n": i})
	}
	eventually(t, "the events to be read", func() bool { return *g.LastSequenceReceived() >= 4+5 })
	received := *g.LastSequenceReceived()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	st := g.Handoff(ctx)
	close(release)
	if st.Sequence >= received {
		t.Fatalf("handoff seq %d, want below the last received %d", st.Sequence, received)
	}
	g.Close(context.Background()) // waits for the callback still running
	mu.Lock()
	defer mu.Unlock()
	if last := delivered[len(delivered)-1]; last < st.Sequence {
		t.Fatalf("delivered up to %d, handoff state says %d", last, st.Sequence)
	}
}

func TestColdResumeOfExpiredSessionIdentifies(t *testing.T) {
	s := newFake(t)
	lim := &countingLimiter{}
	g := newShard(t, s, nil, gateway.WithIdentifyLimiter(lim),
		gateway.WithShardState(gateway.ShardState{SessionID: "gone", Sequence: 7, ResumeURL: s.ResumeGatewayURL()}))
	open(t, g)
	if *g.SessionID() == "gone" || lim.waits.Load() != 1 {
		t.Fatalf("session %s, %d permits: an unknown session must end in IDENTIFY", *g.SessionID(), lim.waits.Load())
	}
}

func TestSendLimiterHoldsBackUserCommands(t *testing.T) {
	s := newFake(t, gatewaytest.WithHeartbeatInterval(time.Hour)) // no heartbeat takes a slot
	g := newShard(t, s, nil, gateway.WithSendRateLimit(4, time.Minute, 1))
	open(t, g) // IDENTIFY used 1 of 4
	presence := gateway.PresenceUpdate{Status: "online"}
	for i := range 2 {
		if err := gateway.UpdatePresence(context.Background(), g, presence); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	// 3 of 4 used; the last slot is reserved for heartbeats.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := gateway.UpdatePresence(ctx, g, presence); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third send: %v, want it held back until ctx ends", err)
	}
	for _, c := range s.Closes() {
		if c.Code == gateway.CloseRateLimited {
			t.Fatal("fake closed 4008: the limiter let too much through")
		}
	}
}

func TestOversizedPayloadIsRejectedBeforeSending(t *testing.T) {
	s := newFake(t)
	g := newShard(t, s, nil)
	open(t, g)
	big := gateway.PresenceUpdate{Status: "online", Activities: []gateway.Activity{{Name: strings.Repeat("x", 5000)}}}
	if err := gateway.UpdatePresence(context.Background(), g, big); !errors.Is(err, gateway.ErrPayloadTooLarge) {
		t.Fatalf("Send: %v, want ErrPayloadTooLarge", err)
	}
	if err := gateway.UpdatePresence(context.Background(), g, gateway.PresenceUpdate{Status: "idle"}); err != nil {
		t.Fatalf("connection unusable after a refused payload: %v", err)
	}
	for _, c := range s.Closes() {
		if c.Code == gateway.CloseDecodeError {
			t.Fatal("the oversized payload reached the fake (4002)")
		}
	}
}

func TestRequestMembersNeedsAFilter(t *testing.T) {
	s := newFake(t)
	g := newShard(t, s, nil)
	open(t, g)
	if err := gateway.RequestMembers(context.Background(), g, gateway.RequestGuildMembers{GuildID: s.GuildIDs()[0]}); err == nil {
		t.Fatal("request without query or user_ids accepted")
	}
	q := ""
	if err := gateway.RequestMembers(context.Background(), g, gateway.RequestGuildMembers{GuildID: s.GuildIDs()[0], Query: &q}); err != nil {
		t.Fatalf("RequestMembers: %v", err)
	}
}

// TestUnreachableResumeURLFallsBackToBootstrap: a session whose resume host
// cannot be dialled is resumed through the bootstrap URL, not re-identified.
func TestUnreachableResumeURLFallsBackToBootstrap(t *testing.T) {
	s := newFake(t)
	g1 := newShard(t, s, nil)
	open(t, g1)
	st := g1.Handoff(context.Background())
	st.ResumeURL = "ws://127.0.0.1:1/dead"
	g2 := newShard(t, s, nil, gateway.WithShardState(st))
	open(t, g2)
	if okResumes(s) != 1 || len(s.Identifies()) != 1 {
		t.Fatalf("%d resumes, %d identifies: want the session resumed via the bootstrap URL", okResumes(s), len(s.Identifies()))
	}
}
