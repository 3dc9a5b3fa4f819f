package sharding

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// NewRateLimiter creates a new default RateLimiter with the given RateLimiterConfigOpt(s).
//
// The limiter holds one permit per bucket (shardID % MaxConcurrency). Waiters of a
// bucket are served first come, first served; the next permit of a bucket is
// granted no sooner than IdentifyWait+Margin after the previous one was unlocked.
// Cancelling a WaitBucket ctx returns at once and never loses the permit; Close
// releases every waiter with ErrLimiterClosed.
//
// The seed's signature has no error: an invalid field (see
// RateLimiterConfig.Validate) is replaced by its default and a warning names it.
// Call Validate first to treat it as an error.
func NewRateLimiter(opts ...RateLimiterConfigOpt) RateLimiter {
	cfg := DefaultRateLimiterConfig()
	cfg.Apply(opts)
	sanitizeRateLimiterConfig(cfg)
	return newLocalLimiter(*cfg)
}

// sanitizeRateLimiterConfig replaces invalid fields by their defaults, one
// warning per field (the logger first, so there is one to warn with).
func sanitizeRateLimiterConfig(cfg *RateLimiterConfig) {
	def := DefaultRateLimiterConfig()
	var fixed []string
	if cfg.Logger == nil {
		cfg.Logger, fixed = def.Logger, append(fixed, "RateLimiterConfig.Logger")
	}
	if cfg.MaxConcurrency < 1 {
		cfg.MaxConcurrency, fixed = def.MaxConcurrency, append(fixed, "RateLimiterConfig.MaxConcurrency")
	}
	if cfg.IdentifyWait < 0 {
		cfg.IdentifyWait, fixed = def.IdentifyWait, append(fixed, "RateLimiterConfig.IdentifyWait")
	}
	if cfg.Margin < 0 {
		cfg.Margin, fixed = def.Margin, append(fixed, "RateLimiterConfig.Margin")
	}
	for _, field := range fixed {
		cfg.Logger.Warn("rate limiter: invalid option replaced by its default", slog.String("field", field))
	}
}

// localLimiter is the in-process RateLimiter.
type localLimiter struct {
	cfg    RateLimiterConfig
	logger *slog.Logger

	mu      sync.Mutex
	buckets map[int]*bucket
	closed  bool
	held    int           // permits held now, over all buckets
	drained chan struct{} // closed once closed && held == 0
}

var (
	_ RateLimiter            = (*localLimiter)(nil)
	_ MaxConcurrencyReporter = (*localLimiter)(nil)
)

// MaxConcurrency is the number of buckets.
func (l *localLimiter) MaxConcurrency() int { return l.cfg.MaxConcurrency }

// bucket is one rate-limit key. Guarded by localLimiter.mu.
type bucket struct {
	held    bool
	holder  int       // shard ID holding the permit, when held
	next    time.Time // no grant before this
	waiters []*waiter // FIFO
	timer   *time.Timer
}

// waiter is one blocked WaitBucket call. ready is closed when the call is
// granted the permit (granted) or released by Close (err).
type waiter struct {
	shardID int
	ready   chan struct{}
	granted bool
	err     error
}

func newLocalLimiter(cfg RateLimiterConfig) *localLimiter {
	return &localLimiter{
		cfg:     cfg,
		logger:  cfg.Logger.With(slog.String("component", "identify_limiter")),
		buckets: make(map[int]*bucket),
		drained: make(chan struct{}),
	}
}

// WaitBucket blocks until shardID's bucket grants its permit, ctx ends
// (ctx.Err()), or the limiter is closed (ErrLimiterClosed). On success the caller
// holds the permit and must call UnlockBucket(shardID).
func (l *localLimiter) WaitBucket(ctx context.Context, shardID int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	key := ShardMaxConcurrencyKey(shardID, l.cfg.MaxConcurrency)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrLimiterClosed
	}
	b := l.bucketLocked(key)
	w := &waiter{shardID: shardID, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	l.dispatchLocked(b)
	l.mu.Unlock()

	select {
	case <-w.ready:
		return w.err
	case <-ctx.Done():
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if w.granted {
		// Granted at the same moment ctx ended: nothing was sent with this
		// permit, so hand it on without starting a window.
		l.releaseLocked(b, false)
		return ctx.Err()
	}
	if w.err != nil {
		return w.err
	}
	b.removeWaiter(w)
	l.dispatchLocked(b)
	return ctx.Err()
}

// UnlockBucket releases shardID's permit and starts the bucket's window. It does
// nothing when shardID does not hold its bucket's permit.
func (l *localLimiter) UnlockBucket(shardID int) {
	key := ShardMaxConcurrencyKey(shardID, l.cfg.MaxConcurrency)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil || !b.held || b.holder != shardID {
		l.logger.Debug("unlock by a shard that holds no permit", slog.Int("shard_id", shardID), slog.Int("bucket", key))
		return
	}
	l.releaseLocked(b, true)
}

// Close releases every waiter with ErrLimiterClosed and makes later WaitBucket
// calls fail at once. It then waits, bounded by ctx, for the permits held now
// to be unlocked.
func (l *localLimiter) Close(ctx context.Context) {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		for _, b := range l.buckets {
			if b.timer != nil {
				b.timer.Stop()
				b.timer = nil
			}
			for _, w := range b.waiters {
				w.err = ErrLimiterClosed
				close(w.ready)
			}
			b.waiters = nil
		}
		if l.held == 0 {
			close(l.drained)
		}
	}
	l.mu.Unlock()
	select {
	case <-l.drained:
	case <-ctx.Done():
	}
}

func (l *localLimiter) bucketLocked(key int) *bucket {
	b := l.buckets[key]
	if b == nil {
		b = &bucket{}
		l.buckets[key] = b
	}
	return b
}

// releaseLocked frees b's permit; window says whether an IDENTIFY may have been
// sent with it, which delays the next grant by IdentifyWait+Margin.
func (l *localLimiter) releaseLocked(b *bucket, window bool) {
	b.held = false
	l.held--
	if window {
		b.next = time.Now().Add(l.cfg.IdentifyWait + l.cfg.Margin)
	}
	if l.closed && l.held == 0 {
		close(l.drained)
	}
	l.dispatchLocked(b)
}

// dispatchLocked grants b's permit to its first waiter if it may, or arms a
// timer for when it may.
func (l *localLimiter) dispatchLocked(b *bucket) {
	if b.held || len(b.waiters) == 0 || l.closed {
		return
	}
	if wait := time.Until(b.next); wait > 0 {
		if b.timer == nil {
			b.timer = time.AfterFunc(wait, func() { l.onTimer(b) })
		}
		return
	}
	w := b.waiters[0]
	b.waiters[0] = nil
	b.waiters = b.waiters[1:]
	b.held, b.holder = true, w.shardID
	l.held++
	w.granted = true
	close(w.ready)
}

func (l *localLimiter) onTimer(b *bucket) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b.timer = nil
	l.dispatchLocked(b)
}

func (b *bucket) removeWaiter(w *waiter) {
	for i, x := range b.waiters {
		if x == w {
			b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
			return
		}
	}
}

// NewNoopRateLimiter creates a new noop RateLimiter.
func NewNoopRateLimiter() RateLimiter { return noopLimiter{} }

// noopLimiter never waits: for a gateway proxy that paces identifies itself.
type noopLimiter struct{}

var _ RateLimiter = noopLimiter{}

func (noopLimiter) Close(context.Context)                 {}
func (noopLimiter) WaitBucket(context.Context, int) error { return nil }
func (noopLimiter) UnlockBucket(int)                      {}
