package gateway

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// sendLimiter keeps one connection under Discord's send limit: at most limit
// commands in any window (a sliding log, so no burst straddles a boundary).
// Commands from Send may use limit-reserved of them; heartbeat, identify and
// resume may use all, so a busy user never starves the heartbeat.
//
// The log grows only as commands are sent, so an idle connection holds a few
// timestamps.
type sendLimiter struct {
	limit    int
	reserved int
	window   time.Duration

	mu    sync.Mutex
	sent  []time.Time // send times within the last window, oldest first
	start int         // sent[start:] are live
}

// newSendLimiter keeps each command in the log for window plus a margin: the
// log has the time a command left the limiter, Discord counts it when it
// arrives, and the two differ by however long the write waited (for another
// write, for the scheduler, on the network). Without the margin a saturated
// limiter sends the 121st command exactly one window after the first left,
// and a first command that arrived a few ms late puts 121 in Discord's
// window: 4008. 5 % of the window plus 250 ms (3.25 s of Discord's 60 s) is
// far more than a write waits on a healthy connection.
func newSendLimiter(limit, reserved int, window time.Duration) *sendLimiter {
	return &sendLimiter{limit: limit, reserved: reserved, window: window + sendMargin(window)}
}

func sendMargin(window time.Duration) time.Duration { return window/20 + 250*time.Millisecond }

// wait blocks until a command may be sent and records it as sent. internal
// commands (heartbeat, identify, resume) may use the reserved slots.
func (l *sendLimiter) wait(ctx context.Context, internal bool) error {
	for {
		delay := l.tryTake(internal)
		if delay == 0 {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("send rate limit: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// tryTake takes a slot and returns 0, or returns how long until one frees.
func (l *sendLimiter) tryTake(internal bool) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	for l.start < len(l.sent) && now.Sub(l.sent[l.start]) >= l.window {
		l.start++
	}
	if l.start > 0 && l.start >= len(l.sent)/2 {
		n := copy(l.sent, l.sent[l.start:])
		l.sent, l.start = l.sent[:n], 0
	}
	allowed := l.limit
	if !internal {
		allowed -= l.reserved
	}
	live := len(l.sent) - l.start
	if live < allowed {
		l.sent = append(l.sent, now)
		return 0
	}
	// The slot we need frees when the command live-allowed+1 from the end
	// leaves the window.
	oldest := l.sent[l.start+live-allowed]
	if allowed <= 0 {
		oldest = now
	}
	return max(oldest.Add(l.window).Sub(now), time.Millisecond)
}
