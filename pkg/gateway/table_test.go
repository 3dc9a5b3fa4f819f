package gateway

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"
)

// TestCloseCodeAction is reference §5's table, code by code.
func TestCloseCodeAction(t *testing.T) {
	want := map[int]CloseAction{
		1000: ActionResume, 1001: ActionResume, 1006: ActionResume, 1011: ActionResume, -1: ActionResume,
		4000: ActionResume, 4001: ActionResume, 4002: ActionResume, 4003: ActionReidentify,
		4004: ActionStop, 4005: ActionResume, 4006: ActionResume, 4007: ActionReidentify,
		4008: ActionResume, 4009: ActionReidentify, 4010: ActionStop, 4011: ActionStop,
		4012: ActionStop, 4013: ActionStop, 4014: ActionStop, 4015: ActionResume, 4900: ActionResume,
	}
	for code, action := range want {
		if got := CloseCodeAction(code); got != action {
			t.Errorf("CloseCodeAction(%d) = %s, want %s", code, got, action)
		}
		ce := &CloseError{Code: code}
		if ce.Fatal() != (action == ActionStop) {
			t.Errorf("CloseError{%d}.Fatal() = %v", code, ce.Fatal())
		}
	}
}

func TestCloseErrorHelpers(t *testing.T) {
	err := fmt.Errorf("open: %w", &CloseError{Code: 4004, Reason: "Authentication failed."})
	if CloseStatus(err) != 4004 || !IsFatal(err) {
		t.Fatalf("CloseStatus/IsFatal through wrapping: %d %v", CloseStatus(err), IsFatal(err))
	}
	if CloseStatus(errors.New("x")) != -1 || IsFatal(nil) {
		t.Fatal("non-close errors")
	}
}

func TestBackoffDelay(t *testing.T) {
	top := func() float64 { return 0.999999 }
	cases := []struct {
		n    int
		want time.Duration // ceiling
	}{{0, time.Second}, {1, 2 * time.Second}, {3, 8 * time.Second}, {6, time.Minute}, {60, time.Minute}}
	for _, tc := range cases {
		got := backoffDelay(tc.n, time.Second, time.Minute, top)
		if got > tc.want || got < tc.want*99/100 {
			t.Errorf("attempt %d: ceiling %s, want %s", tc.n, got, tc.want)
		}
		if z := backoffDelay(tc.n, time.Second, time.Minute, func() float64 { return 0 }); z != 0 {
			t.Errorf("attempt %d: full jitter must reach 0, got %s", tc.n, z)
		}
	}
	if j := heartbeatJitter(time.Second, func() float64 { return 0.5 }); j != 500*time.Millisecond {
		t.Errorf("jitter %s", j)
	}
}

// TestSendLimiter runs on a fake clock: 5 per minute with 2 reserved.
func TestSendLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newSendLimiter(5, 2, time.Minute)
		ctx := context.Background()
		start := time.Now()
		for i := range 3 {
			if err := l.wait(ctx, false); err != nil {
				t.Fatal(err)
			}
			if time.Since(start) != 0 {
				t.Fatalf("user command %d waited", i)
			}
		}
		// User slots are gone; internal commands still get the reserved two.
		for range 2 {
			if err := l.wait(ctx, true); err != nil || time.Since(start) != 0 {
				t.Fatal("reserved slot not available to internal commands")
			}
		}
		short, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := l.wait(short, true); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("sixth command in a minute: %v", err)
		}
		// The first command leaves the window one minute (and the margin for
		// its arrival) after it was sent.
		if err := l.wait(ctx, false); err != nil {
			t.Fatal(err)
		}
		if waited, want := time.Since(start), time.Minute+sendMargin(time.Minute); waited != want {
			t.Fatalf("user command waited %s, want exactly the window and margin (%s)", waited, want)
		}
	})
}

func TestSendLimiterSlidingWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newSendLimiter(120, 3, time.Minute)
		ctx := context.Background()
		for range 2000 {
			if err := l.wait(ctx, true); err != nil {
				t.Fatal(err)
			}
			// Invariant: never more than 120 sends in any 60 s.
			if n := len(l.sent) - l.start; n > 120 {
				t.Fatalf("%d commands within the window", n)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(l.sent) > 2*120+1 {
			t.Fatalf("log holds %d entries: it must be pruned", len(l.sent))
		}
	})
}

// TestConnectionResultPrefersThePeersClose pins how a connection's end is
// told: the client's own cause wins over the echo of its close, but not over a
// close frame the peer sent when the cause is only a write the close broke (a
// heartbeat racing a 4012 once RESUMEd over a fatal close), nor over a fatal
// code.
func TestConnectionResultPrefersThePeersClose(t *testing.T) {
	peer := func(code int) error {
		return fmt.Errorf("received close frame: %w", websocket.CloseError{Code: websocket.StatusCode(code), Reason: "test"})
	}
	brokenWrite := fmt.Errorf("heartbeat: %w: %w", errWriteFailed, errors.New("use of closed network connection"))
	budget := fmt.Errorf("identify permit: %w", errors.New("budget exhausted"))
	cases := []struct {
		name       string
		cause      error
		action     CloseAction
		readErr    error
		wantCode   int // -1: not a *CloseError
		wantAction CloseAction
		wantCause  error // with wantCode -1: errors.Is(err, wantCause)
	}{
		{"fatal close beats a broken heartbeat write", brokenWrite, ActionResume, peer(4012), 4012, ActionStop, nil},
		{"resumable close beats a broken write", brokenWrite, ActionResume, peer(4009), 4009, ActionReidentify, nil},
		{"fatal close beats a zombie verdict", ErrZombie, ActionResume, peer(4004), 4004, ActionStop, nil},
		{"own zombie close echoed", ErrZombie, ActionResume, peer(4000), -1, ActionResume, ErrZombie},
		{"own op 9 verdict echoed", ErrInvalidSession, ActionReidentify, peer(4901), -1, ActionReidentify, ErrInvalidSession},
		{"limiter refusal echoed keeps its error", budget, ActionResume, peer(4901), -1, ActionResume, budget},
		{"broken write, no close frame", brokenWrite, ActionResume, errors.New("EOF"), -1, ActionResume, errWriteFailed},
		{"peer close, no cause", nil, ActionResume, peer(4011), 4011, ActionStop, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &connection{run: &run{ctx: context.Background()}, cause: tc.cause, action: tc.action}
			err, action := c.result(tc.readErr)
			if got := CloseStatus(err); got != tc.wantCode {
				t.Fatalf("result: %v (close code %d), want code %d", err, got, tc.wantCode)
			}
			if action != tc.wantAction {
				t.Fatalf("action %s, want %s", action, tc.wantAction)
			}
			if tc.wantCause != nil && !errors.Is(err, tc.wantCause) {
				t.Fatalf("result: %v, want %v", err, tc.wantCause)
			}
		})
	}
}
