package gateway_test

import (
	"context"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// testReadyTimeout is short so a stuck handshake is noticed within the test.
const testReadyTimeout = 300 * time.Millisecond

func countCode(codes []int, code int) int {
	n := 0
	for _, c := range codes {
		if c == code {
			n++
		}
	}
	return n
}

// A server that ACKs heartbeats but never answers RESUME (no RESUMED, no op
// 9) must not hold a reconnect forever: the client gives up after
// ReadyTimeout, closes with a non-1000 code and tries again, and once the
// server answers, the session resumes (no new IDENTIFY).
func TestReadyTimeoutAfterResumeReconnects(t *testing.T) {
	s := newFake(t)
	g := newShard(t, s, nil, gateway.WithReadyTimeout(testReadyTimeout))
	open(t, g)
	s.SetWithholdReady(true)
	s.SendReconnect(0) // the client closes 4901 and RESUMEs into silence
	eventually(t, "a client close after an unanswered RESUME", func() bool {
		return countCode(clientCloses(s), gateway.CloseCodeReconnect) >= 2
	})
	if okResumes(s) != 0 {
		t.Fatal("a RESUME succeeded while the fake withheld RESUMED")
	}
	s.SetWithholdReady(false)
	eventually(t, "a successful RESUME", func() bool { return okResumes(s) >= 1 && g.Status() == gateway.StatusReady })
	if n := len(s.Identifies()); n != 1 {
		t.Fatalf("%d identifies, want 1: a ready timeout after RESUME must resume again", n)
	}
	for _, c := range clientCloses(s) {
		if c == gateway.CloseCodeNormal || c == gateway.CloseCodeGoingAway {
			t.Fatalf("client closed with %d: the session must stay resumable", c)
		}
	}
}

// Open against a server that never sends READY keeps retrying IDENTIFY (one
// permit each) instead of waiting forever, and succeeds once READY comes.
func TestReadyTimeoutDuringOpenReidentifies(t *testing.T) {
	s := newFake(t)
	s.SetWithholdReady(true)
	lim := &countingLimiter{}
	g := newShard(t, s, nil, gateway.WithReadyTimeout(testReadyTimeout), gateway.WithIdentifyLimiter(lim))
	opened := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		opened <- g.Open(ctx)
	}()
	eventually(t, "a second IDENTIFY after an unanswered one", func() bool { return len(s.Identifies()) >= 2 })
	s.SetWithholdReady(false)
	if err := <-opened; err != nil {
		t.Fatalf("Open: %v", err)
	}
	if g.Status() != gateway.StatusReady {
		t.Fatalf("status %v after Open, want ready", g.Status())
	}
	// Open returns at READY, which can beat the handshake goroutine's
	// UnlockBucket (deferred after the IDENTIFY write): wait for it.
	eventually(t, "every permit released", func() bool { return lim.unlocks.Load() >= lim.waits.Load() })
	if w, u := lim.waits.Load(), lim.unlocks.Load(); w != u || w != int64(len(s.Identifies())) || lim.violations.Load() != 0 {
		t.Fatalf("permits: %d waits, %d unlocks, %d identifies, %d violations", w, u, len(s.Identifies()), lim.violations.Load())
	}
	if st := s.Stats(); st.DuplicateSessions != 0 || st.LiveSessions != 1 {
		t.Fatalf("fake stats %+v: want one live session", st)
	}
}

// The ready wait does not cut a healthy connection: with a ready timeout
// shorter than the connection's life, no ready-timeout close (4901) follows
// READY. (Other closes, e.g. a zombie verdict on a starved CI machine with
// 100 ms heartbeats, are not this test's concern.)
func TestReadyTimeoutDoesNotCloseAReadyConnection(t *testing.T) {
	s := newFake(t)
	g := newShard(t, s, nil, gateway.WithReadyTimeout(testReadyTimeout))
	open(t, g)
	deadline := time.Now().Add(3 * testReadyTimeout)
	for time.Now().Before(deadline) {
		if countCode(clientCloses(s), gateway.CloseCodeReconnect) != 0 {
			t.Fatalf("a READY connection was closed for want of READY: %v", clientCloses(s))
		}
		time.Sleep(20 * time.Millisecond) // observing for a span: nothing may happen in it
	}
}
