package sharding

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shardfleet/shardfleet/internal/testutil"
)

const (
	testWindow = 50 * time.Millisecond
	testMargin = 5 * time.Millisecond
)

func newTestLimiter(mc int) RateLimiter {
	return NewRateLimiter(WithMaxConcurrency(mc), WithIdentifyWait(testWindow), WithIdentifyMargin(testMargin),
		WithRateLimiterLogger(slog.New(slog.DiscardHandler)))
}

// grant is one WaitBucket return, on the bubble's clock.
type grant struct {
	shard int
	at    time.Time
	err   error
}

// Waiters of one bucket are served in arrival order, each no sooner than the
// previous unlock + window + margin.
func TestRateLimiterFIFOAndWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newTestLimiter(4)
		defer l.Close(t.Context())
		ctx := t.Context()
		if err := l.WaitBucket(ctx, 0); err != nil {
			t.Fatal(err)
		}
		grants := make(chan grant, 8)
		var wg sync.WaitGroup
		order := []int{12, 4, 8, 16} // all bucket 0, arriving in this order
		for _, id := range order {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := l.WaitBucket(ctx, id)
				grants <- grant{shard: id, at: time.Now(), err: err}
			}()
			synctest.Wait() // id is queued before the next one arrives
		}
		time.Sleep(time.Second) // fake clock: holding the permit for a long time
		if len(grants) != 0 {
			t.Fatalf("a waiter was granted while the permit was held")
		}
		unlockedAt := time.Now()
		l.UnlockBucket(0)
		for _, want := range order {
			g := <-grants
			if g.err != nil || g.shard != want {
				t.Fatalf("grant = %+v, want shard %d", g, want)
			}
			if gap := g.at.Sub(unlockedAt); gap != testWindow+testMargin {
				t.Fatalf("shard %d granted %v after the unlock, want exactly %v", g.shard, gap, testWindow+testMargin)
			}
			time.Sleep(3 * time.Millisecond) // the IDENTIFY takes a while
			unlockedAt = time.Now()
			l.UnlockBucket(g.shard)
		}
		wg.Wait()
	})
}

// Buckets are independent: a held bucket 0 doesn't delay bucket 1.
func TestRateLimiterBucketsIndependent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newTestLimiter(2)
		defer l.Close(t.Context())
		start := time.Now()
		for _, id := range []int{0, 1} {
			if err := l.WaitBucket(t.Context(), id); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("two buckets took %v, want no wait", d)
		}
		l.UnlockBucket(0)
		l.UnlockBucket(1)
	})
}

// A cancelled waiter returns at once with ctx's error, and the permit isn't
// leaked: the next waiter gets it on time.
func TestRateLimiterCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newTestLimiter(1)
		defer l.Close(t.Context())
		if err := l.WaitBucket(t.Context(), 0); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- l.WaitBucket(ctx, 1) }()
		synctest.Wait()
		start := time.Now()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled wait = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("cancel took %v, want at once", d)
		}
		// An already-cancelled ctx fails without queueing.
		if err := l.WaitBucket(ctx, 2); !errors.Is(err, context.Canceled) {
			t.Fatalf("wait with a done ctx = %v", err)
		}
		l.UnlockBucket(0)
		start = time.Now()
		if err := l.WaitBucket(t.Context(), 3); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != testWindow+testMargin {
			t.Fatalf("next grant after %v, want %v", d, testWindow+testMargin)
		}
		l.UnlockBucket(3)
	})
}

// A waiter whose ctx ends at the very instant its grant comes must either get
// the permit or hand it on: never leave the bucket held by nobody.
func TestRateLimiterGrantCancelRace(t *testing.T) {
	for range 50 {
		synctest.Test(t, func(t *testing.T) {
			l := newTestLimiter(1)
			defer l.Close(t.Context())
			if err := l.WaitBucket(t.Context(), 0); err != nil {
				t.Fatal(err)
			}
			l.UnlockBucket(0)
			// The grant is due at exactly the deadline.
			ctx, cancel := context.WithTimeout(t.Context(), testWindow+testMargin)
			defer cancel()
			err := l.WaitBucket(ctx, 1)
			if err == nil {
				l.UnlockBucket(1)
				time.Sleep(testWindow + testMargin)
			} else if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("racing wait = %v", err)
			}
			start := time.Now()
			if err := l.WaitBucket(t.Context(), 2); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d != 0 {
				t.Fatalf("permit lost: next waiter waited %v", d)
			}
			l.UnlockBucket(2)
		})
	}
}

// UnlockBucket by a shard that holds no permit, or of an unknown bucket, does
// nothing.
func TestRateLimiterUnlockByNonHolder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newTestLimiter(4)
		defer l.Close(t.Context())
		l.UnlockBucket(99) // unknown bucket: no panic, no effect
		if err := l.WaitBucket(t.Context(), 0); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- l.WaitBucket(t.Context(), 8) }()
		synctest.Wait()
		l.UnlockBucket(4) // same bucket, not the holder
		time.Sleep(time.Second)
		select {
		case err := <-done:
			t.Fatalf("a non-holder's unlock released the bucket (%v)", err)
		default:
		}
		l.UnlockBucket(0)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		l.UnlockBucket(8)
	})
}

// Close releases every waiter with ErrLimiterClosed, later waits fail at once,
// and Close waits for held permits, bounded by its ctx.
func TestRateLimiterClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newTestLimiter(1)
		if err := l.WaitBucket(t.Context(), 0); err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 3)
		for id := 1; id <= 3; id++ {
			go func() { errs <- l.WaitBucket(t.Context(), id) }()
		}
		synctest.Wait()
		closed := make(chan struct{})
		go func() {
			l.Close(t.Context())
			close(closed)
		}()
		for range 3 {
			if err := <-errs; !errors.Is(err, ErrLimiterClosed) {
				t.Fatalf("waiter released with %v, want ErrLimiterClosed", err)
			}
		}
		if err := l.WaitBucket(t.Context(), 5); !errors.Is(err, ErrLimiterClosed) {
			t.Fatalf("wait after close = %v, want ErrLimiterClosed", err)
		}
		synctest.Wait()
		select {
		case <-closed:
			t.Fatal("Close returned while a permit was held")
		default:
		}
		l.UnlockBucket(0)
		<-closed

		// Bounded by ctx: a permit never unlocked doesn't wedge Close.
		l2 := newTestLimiter(1)
		if err := l2.WaitBucket(t.Context(), 0); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start := time.Now()
		l2.Close(ctx)
		if d := time.Since(start); d != time.Second {
			t.Fatalf("Close returned after %v, want at its ctx's deadline", d)
		}
		l2.UnlockBucket(0)
		l2.Close(t.Context()) // twice is fine; now nothing is held
	})
}

func TestNoopRateLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewNoopRateLimiter()
		start := time.Now()
		for range 10 {
			if err := l.WaitBucket(t.Context(), 0); err != nil {
				t.Fatal(err)
			}
		}
		l.UnlockBucket(0)
		l.Close(t.Context())
		if d := time.Since(start); d != 0 {
			t.Fatalf("noop limiter waited %v", d)
		}
	})
}

func TestRateLimiterConfig(t *testing.T) {
	c := DefaultRateLimiterConfig()
	if c.MaxConcurrency != MaxConcurrency || c.IdentifyWait != 5*time.Second || c.Margin != 250*time.Millisecond || c.Logger == nil {
		t.Fatalf("defaults = %+v", c)
	}
	c.Apply([]RateLimiterConfigOpt{WithMaxConcurrency(16), nil, WithIdentifyWait(time.Second), WithIdentifyMargin(0)})
	if c.MaxConcurrency != 16 || c.IdentifyWait != time.Second || c.Margin != 0 {
		t.Fatalf("applied = %+v", c)
	}
	for _, tc := range []struct {
		opt   RateLimiterConfigOpt
		field string
	}{
		{WithMaxConcurrency(0), "RateLimiterConfig.MaxConcurrency"},
		{WithRateLimiterLogger(nil), "RateLimiterConfig.Logger"},
		{WithIdentifyWait(-1), "RateLimiterConfig.IdentifyWait"},
		{WithIdentifyMargin(-time.Second), "RateLimiterConfig.Margin"},
	} {
		c := DefaultRateLimiterConfig()
		c.Apply([]RateLimiterConfigOpt{tc.opt})
		var ce *ConfigError
		if err := c.Validate(); !errors.As(err, &ce) || ce.Field != tc.field || !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Validate = %v, want a ConfigError on %s", err, tc.field)
		}
	}
}

// NewRateLimiter has no error to return: a bad option falls back to its
// default and the warning names the field.
func TestNewRateLimiterInvalidFallsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf testutil.LogBuffer
		logger := slog.New(slog.NewTextHandler(&buf, nil))
		l := NewRateLimiter(WithMaxConcurrency(-3), WithRateLimiterLogger(logger), WithIdentifyWait(testWindow))
		defer l.Close(t.Context())
		out := buf.String()
		if !strings.Contains(out, "RateLimiterConfig.MaxConcurrency") {
			t.Fatalf("no warning naming the field: %q", out)
		}
		// MaxConcurrency fell back to 1: shards 0 and 1 share a bucket.
		if err := l.WaitBucket(t.Context(), 0); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- l.WaitBucket(t.Context(), 1) }()
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("shard 1 got a permit while shard 0 held the only bucket")
		default:
		}
		l.UnlockBucket(0)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		l.UnlockBucket(1)
	})
}

// Every field invalid at once, the logger included: no panic, all defaults.
func TestNewRateLimiterAllInvalid(t *testing.T) {
	l := NewRateLimiter(WithRateLimiterLogger(nil), WithMaxConcurrency(0), WithIdentifyWait(-1), WithIdentifyMargin(-1))
	defer l.Close(t.Context())
	cfg := l.(*localLimiter).cfg
	if err := cfg.Validate(); err != nil || cfg.IdentifyWait != DefaultIdentifyWait || cfg.Margin != DefaultIdentifyMargin {
		t.Fatalf("config after fallback = %+v (%v)", cfg, err)
	}
}
