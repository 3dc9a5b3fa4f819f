package gateway_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// refusedUntil is a limiter error that asks for a delay, as
// redislimiter.BudgetError does until the identify budget resets.
type refusedUntil struct{ d time.Duration }

func (e refusedUntil) Error() string             { return fmt.Sprintf("refused for %v", e.d) }
func (e refusedUntil) RetryAfter() time.Duration { return e.d }

// retryAfterLimiter refuses the first permit with a RetryAfter and grants
// the next ones, recording when each was asked for.
type retryAfterLimiter struct {
	after time.Duration
	mu    sync.Mutex
	asked []time.Time
}

func (l *retryAfterLimiter) WaitBucket(context.Context, int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked = append(l.asked, time.Now())
	if len(l.asked) == 1 {
		return fmt.Errorf("budget: %w", refusedUntil{l.after})
	}
	return nil
}

func (l *retryAfterLimiter) UnlockBucket(int) {}

func (l *retryAfterLimiter) times() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.asked...)
}

// A limiter refusal that carries RetryAfter holds the next connection attempt
// back at least that long, instead of the reconnect backoff (5-50 ms here):
// a shard at the identify budget's floor does not reconnect every backoff
// only to be refused again.
func TestLimiterRetryAfterDelaysTheNextAttempt(t *testing.T) {
	s := newFake(t)
	const after = 300 * time.Millisecond
	lim := &retryAfterLimiter{after: after}
	g := newShard(t, s, nil, gateway.WithIdentifyLimiter(lim))
	open(t, g)
	asked := lim.times()
	if len(asked) != 2 {
		t.Fatalf("%d permit requests, want 2 (refused, then granted)", len(asked))
	}
	if gap := asked[1].Sub(asked[0]); gap < after {
		t.Fatalf("the second attempt asked for its permit %v after the refusal, want >= RetryAfter %v", gap, after)
	}
	if n := len(s.Identifies()); n != 1 {
		t.Fatalf("%d identifies, want 1", n)
	}
}
