package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// okResumes counts the fake's successful RESUMEs.
func okResumes(s *gatewaytest.Server) int {
	n := 0
	for _, r := range s.Resumes() {
		if r.OK {
			n++
		}
	}
	return n
}

// clientCloses returns the close codes the fake received from clients.
func clientCloses(s *gatewaytest.Server) []int {
	var codes []int
	for _, c := range s.Closes() {
		if c.FromClient {
			codes = append(codes, c.Code)
		}
	}
	return codes
}

// TestCloseCodes closes the connection with each of Discord's codes and
// checks the client's reaction: RESUME, a new IDENTIFY, or a stop that never
// retries and reaches the close handler.
func TestCloseCodes(t *testing.T) {
	codes := []int{1000, 1001, 1011, 4000, 4001, 4002, 4003, 4004, 4005, 4007, 4008, 4009,
		4010, 4011, 4012, 4013, 4014}
	for _, code := range codes {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			s := newFake(t)
			lim := &countingLimiter{}
			closes := &closeRecorder{}
			g := newShard(t, s, nil, gateway.WithIdentifyLimiter(lim), gateway.WithCloseHandler(closes.handle))
			open(t, g)
			session := *g.SessionID()
			if s.CloseConnections(0, code, "test") != 1 {
				t.Fatal("fake closed no connection")
			}
			switch gateway.CloseCodeAction(code) {
			case gateway.ActionResume:
				eventually(t, "a successful RESUME", func() bool { return okResumes(s) == 1 && g.Status() == gateway.StatusReady })
				if got := *g.SessionID(); got != session {
					t.Fatalf("session %s after resume, want %s", got, session)
				}
				if n := lim.waits.Load(); n != 1 {
					t.Fatalf("%d identify permits, want 1 (resume takes none)", n)
				}
			case gateway.ActionReidentify:
				eventually(t, "a new session", func() bool {
					id := g.SessionID()
					return id != nil && *id != session && g.Status() == gateway.StatusReady
				})
				if n := lim.waits.Load(); n != 2 {
					t.Fatalf("%d identify permits, want 2", n)
				}
				if n := len(s.Resumes()); n != 0 {
					t.Fatalf("%d resumes, want 0", n)
				}
			case gateway.ActionStop:
				eventually(t, "the close handler", func() bool { return len(closes.snapshot()) == 1 })
				call := closes.snapshot()[0]
				if gateway.CloseStatus(call.err) != code || call.reconnect || !gateway.IsFatal(call.err) {
					t.Fatalf("close handler got (%v, %v), want fatal %d", call.err, call.reconnect, code)
				}
				if g.Status() != gateway.StatusStopped {
					t.Fatalf("status %s, want stopped", g.Status())
				}
				// The run has ended, so these counts are final.
				if n := lim.waits.Load(); n != 1 {
					t.Fatalf("%d identify permits after a fatal close, want 1 (no retry)", n)
				}
				if n := len(s.Resumes()); n != 0 {
					t.Fatalf("%d resumes after a fatal close", n)
				}
			}
			// UnlockBucket follows the IDENTIFY write, maybe just after READY arrives.
			eventually(t, "every permit unlocked", func() bool { return lim.waits.Load() == lim.unlocks.Load() })
			if lim.violations.Load() != 0 {
				t.Fatalf("permits: %d waits, %d unlocks, %d violations", lim.waits.Load(), lim.unlocks.Load(), lim.violations.Load())
			}
		})
	}
}

func TestBadTokenStopsWithoutRetry(t *testing.T) {
	s := newFake(t)
	lim := &countingLimiter{}
	closes := &closeRecorder{}
	g := gateway.New("wrong-token", nil, gateway.WithURL(s.GatewayURL()), gateway.WithLogger(testLogger()),
		gateway.WithReconnectBackoff(time.Millisecond, 5*time.Millisecond),
		gateway.WithIdentifyLimiter(lim), gateway.WithCloseHandler(closes.handle))
	defer g.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	err := g.Open(ctx)
	if gateway.CloseStatus(err) != gateway.CloseAuthenticationFailed || !gateway.IsFatal(err) {
		t.Fatalf("Open: %v, want a fatal 4004", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Open waited for its ctx instead of returning the fatal close")
	}
	if n := lim.waits.Load(); n != 1 {
		t.Fatalf("%d identifies, want exactly 1", n)
	}
	if g.Status() != gateway.StatusStopped {
		t.Fatalf("status %s, want stopped", g.Status())
	}
	if len(closes.snapshot()) != 1 {
		t.Fatalf("close handler called %d times, want 1", len(closes.snapshot()))
	}
	if containsToken(err.Error(), "wrong-token") {
		t.Fatal("token in error")
	}
}

func containsToken(s, token string) bool {
	for i := 0; i+len(token) <= len(s); i++ {
		if s[i:i+len(token)] == token {
			return true
		}
	}
	return false
}

func TestZombieConnectionIsClosedAndResumed(t *testing.T) {
	s := newFake(t, gatewaytest.WithHeartbeatTimeout(time.Hour, 4009))
	rec := &recorder{}
	g := newShard(t, s, rec)
	open(t, g)
	s.SetAckHeartbeats(false)
	eventually(t, "a client close with the zombie code", func() bool {
		for _, c := range clientCloses(s) {
			if c == gateway.CloseCodeZombie {
				return true
			}
		}
		return false
	})
	s.SetAckHeartbeats(true)
	eventually(t, "a successful RESUME", func() bool { return okResumes(s) >= 1 && g.Status() == gateway.StatusReady })
	if n := len(s.Identifies()); n != 1 {
		t.Fatalf("%d identifies, want 1: a zombie must resume", n)
	}
}

func TestReconnectOpcodeResumesOnResumeURL(t *testing.T) {
	s := newFake(t)
	g := newShard(t, s, nil)
	open(t, g)
	s.SendReconnect(0)
	eventually(t, "a successful RESUME", func() bool { return okResumes(s) == 1 && g.Status() == gateway.StatusReady })
	r := s.Resumes()[0]
	want, _ := url.Parse(s.ResumeGatewayURL())
	if r.URLPath != want.Path {
		t.Fatalf("resumed on %q, want the resume_gateway_url path %q", r.URLPath, want.Path)
	}
	eventually(t, "the fake to record the client's close", func() bool { return len(clientCloses(s)) == 1 })
	if codes := clientCloses(s); codes[0] == 1000 || codes[0] == 1001 {
		t.Fatalf("client closes %v: op 7 must close with a code other than 1000/1001", codes)
	}
}

func TestInvalidSessionResumableResumes(t *testing.T) {
	s := newFake(t)
	g := newShard(t, s, nil)
	open(t, g)
	session := *g.SessionID()
	s.InvalidateSession(0, true)
	eventually(t, "a successful RESUME", func() bool { return okResumes(s) == 1 && g.Status() == gateway.StatusReady })
	if *g.SessionID() != session || len(s.Identifies()) != 1 {
		t.Fatal("op 9 true started a new session")
	}
}

func TestInvalidSessionNotResumableReidentifiesOnBootstrapURL(t *testing.T) {
	s := newFake(t)
	lim := &countingLimiter{}
	g := newShard(t, s, nil, gateway.WithIdentifyLimiter(lim))
	open(t, g)
	session := *g.SessionID()
	s.InvalidateSession(0, false)
	eventually(t, "a new session", func() bool {
		id := g.SessionID()
		return id != nil && *id != session && g.Status() == gateway.StatusReady
	})
	if len(s.Resumes()) != 0 {
		t.Fatalf("op 9 false was followed by a RESUME: %+v", s.Resumes())
	}
	eventually(t, "the second permit unlocked", func() bool { return lim.unlocks.Load() == 2 })
	if lim.waits.Load() != 2 || lim.unlocks.Load() != 2 {
		t.Fatalf("permits %d/%d, want 2/2", lim.waits.Load(), lim.unlocks.Load())
	}
}

// TestIdentifyPermit: every IDENTIFY (first, and after op 9 false) takes the
// permit; RESUMEs (after op 7, a drop) never do.
func TestIdentifyPermit(t *testing.T) {
	s := newFake(t)
	lim := &countingLimiter{}
	g := newShard(t, s, nil, gateway.WithIdentifyLimiter(lim))
	open(t, g)
	s.SendReconnect(0)
	eventually(t, "resume 1", func() bool { return okResumes(s) == 1 && g.Status() == gateway.StatusReady })
	s.DropConnections(0)
	eventually(t, "resume 2", func() bool { return okResumes(s) == 2 && g.Status() == gateway.StatusReady })
	if n := lim.waits.Load(); n != 1 {
		t.Fatalf("%d permits after two resumes, want 1", n)
	}
	s.InvalidateSession(0, false)
	eventually(t, "reidentify", func() bool { return len(s.Identifies()) == 2 && g.Status() == gateway.StatusReady })
	eventually(t, "the second permit unlocked", func() bool { return lim.unlocks.Load() == 2 })
	if lim.waits.Load() != 2 || lim.unlocks.Load() != 2 || lim.violations.Load() != 0 {
		t.Fatalf("permits %d waits / %d unlocks / %d violations, want 2/2/0",
			lim.waits.Load(), lim.unlocks.Load(), lim.violations.Load())
	}
}

// failingLimiter refuses the permit: the connection must not IDENTIFY.
type failingLimiter struct{ unlocks int }

func (l *failingLimiter) WaitBucket(context.Context, int) error {
	return errors.New("budget exhausted")
}
func (l *failingLimiter) UnlockBucket(int) { l.unlocks++ }

func TestIdentifyPermitErrorIsReturnedAndNotUnlocked(t *testing.T) {
	s := newFake(t)
	lim := &failingLimiter{}
	g := newShard(t, s, nil, gateway.WithIdentifyLimiter(lim), gateway.WithAutoReconnect(false))
	err := g.Open(context.Background())
	if err == nil || !containsToken(err.Error(), "budget exhausted") {
		t.Fatalf("Open: %v, want the limiter's error", err)
	}
	if lim.unlocks != 0 || len(s.Identifies()) != 0 {
		t.Fatalf("%d unlocks, %d identifies after a refused permit", lim.unlocks, len(s.Identifies()))
	}
}

func TestAutoReconnectOffCallsCloseHandler(t *testing.T) {
	s := newFake(t)
	closes := &closeRecorder{}
	g := newShard(t, s, nil, gateway.WithAutoReconnect(false), gateway.WithCloseHandler(closes.handle))
	open(t, g)
	s.CloseConnections(0, 4000, "bye")
	eventually(t, "the close handler", func() bool { return len(closes.snapshot()) == 1 })
	call := closes.snapshot()[0]
	if gateway.CloseStatus(call.err) != 4000 || !call.reconnect {
		t.Fatalf("close handler got (%v, %v), want 4000 reconnectable", call.err, call.reconnect)
	}
	if g.Status() != gateway.StatusDisconnected {
		t.Fatalf("status %s, want disconnected", g.Status())
	}
	open(t, g) // may be opened again; it resumes
	if okResumes(s) != 1 {
		t.Fatal("reopen did not resume")
	}
}

func TestOpenGivesUpWhenCtxEnds(t *testing.T) {
	g := gateway.New("token", nil, gateway.WithURL("ws://127.0.0.1:1/gateway"), gateway.WithLogger(testLogger()),
		gateway.WithReconnectBackoff(time.Millisecond, 5*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := g.Open(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open: %v, want DeadlineExceeded", err)
	}
	g.Close(context.Background())
}

func TestCloseEndsSessionAndGatewayReopens(t *testing.T) {
	s := newFake(t)
	g := newShard(t, s, nil)
	open(t, g)
	first := *g.SessionID()
	g.Close(context.Background())
	if g.SessionID() != nil || g.Status() != gateway.StatusDisconnected {
		t.Fatalf("after Close: session %v, status %s", g.SessionID(), g.Status())
	}
	eventually(t, "the fake to see a 1000 close", func() bool {
		codes := clientCloses(s)
		return len(codes) == 1 && codes[0] == 1000
	})
	open(t, g)
	if *g.SessionID() == first || len(s.Identifies()) != 2 {
		t.Fatal("reopen after Close did not start a new session")
	}
}

// TestOpenGivesUpDuringAHangingDial: a server that accepts TCP and never
// answers the upgrade. When Open's ctx ends, the dial in progress is
// abandoned at once, not after HelloTimeout.
func TestOpenGivesUpDuringAHangingDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // never answered
		}
	}()
	g := gateway.New("token", nil, gateway.WithURL("ws://"+ln.Addr().String()+"/gateway"), gateway.WithLogger(testLogger()),
		gateway.WithHelloTimeout(time.Minute), gateway.WithCloseTimeout(time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := g.Open(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open: %v, want DeadlineExceeded", err)
	}
	if took := time.Since(start); took > waitLimit {
		t.Fatalf("Open took %s: the dial was not abandoned", took)
	}
	g.Close(context.Background())
	_ = ln.Close()
	<-accepted
	for _, c := range held {
		_ = c.Close()
	}
}

// blockingLimiter holds every permit until the caller's ctx ends.
type blockingLimiter struct {
	waiting chan struct{} // closed when WaitBucket is entered
	ended   chan error    // WaitBucket's ctx error
}

func (l *blockingLimiter) WaitBucket(ctx context.Context, _ int) error {
	close(l.waiting)
	<-ctx.Done()
	l.ended <- ctx.Err()
	return ctx.Err()
}

func (l *blockingLimiter) UnlockBucket(int) {}

// TestCloseWhileWaitingForTheIdentifyPermit: Close ends the permit wait (its
// ctx is cancelled) and returns without waiting for the permit.
func TestCloseWhileWaitingForTheIdentifyPermit(t *testing.T) {
	s := newFake(t)
	lim := &blockingLimiter{waiting: make(chan struct{}), ended: make(chan error, 1)}
	g := newShard(t, s, nil, gateway.WithIdentifyLimiter(lim))
	opened := make(chan error, 1)
	go func() { opened <- g.Open(context.Background()) }()
	select {
	case <-lim.waiting:
	case <-time.After(waitLimit):
		t.Fatal("IDENTIFY never asked for its permit")
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	g.Close(ctx)
	if ctx.Err() != nil {
		t.Fatal("Close waited for the permit")
	}
	if err := <-lim.ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("permit wait ended with %v, want its ctx cancelled", err)
	}
	if err := <-opened; err == nil {
		t.Fatal("Open succeeded without a permit")
	}
	if len(s.Identifies()) != 0 {
		t.Fatal("IDENTIFY sent without a permit")
	}
}
