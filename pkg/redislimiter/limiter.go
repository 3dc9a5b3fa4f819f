package redislimiter

import (
	"github.com/shardfleet/shardfleet/internal/keyspace"

	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/sharding"
)

var (
	_ sharding.RateLimiter    = (*Limiter)(nil)
	_ gateway.IdentifyLimiter = (*Limiter)(nil)
)

// Limiter is the fleet-wide identify limiter. Its methods are safe for
// concurrent use. Create it with New; Close it when done.
type Limiter struct {
	cfg    Config
	err    error // configuration error, returned by every WaitBucket
	client redis.UniversalClient
	log    *slog.Logger
	id     string // this limiter's id: holder name and epoch candidate

	stop      context.Context // done when Close starts
	cancel    context.CancelFunc
	bg        sync.WaitGroup // the notification listener and background leaves
	ps        *redis.PubSub
	closeOnce sync.Once
	closedCh  chan struct{} // closed once every goroutine is gone

	mu      sync.Mutex
	closed  bool
	calls   sync.WaitGroup     // WaitBucket calls in flight
	waiters map[string]*waiter // by ticket
	holders map[int]string     // bucket -> ticket of a permit this process holds
	epoch   string             // last epoch seen in Redis ("" before the first reply)
}

// waiter is one WaitBucket call in this process. The listener sends it the
// delay (µs) after which its bucket may be granted.
type waiter struct {
	wake chan int64 // capacity 1; only the listener sends
}

// New returns a Limiter over client. It never fails: a configuration error is
// kept, returned by Err and by every WaitBucket (fail closed), and no goroutine
// is started. A valid Limiter starts one goroutine that listens for
// notifications; Close stops it.
//
// For ctx cancellation to interrupt a Redis call in flight, the client should
// have ContextTimeoutEnabled; otherwise WaitBucket returns when the call ends
// (bounded by the client's ReadTimeout).
func New(client redis.UniversalClient, opts ...ConfigOpt) *Limiter {
	cfg := DefaultConfig()
	cfg.Logger = slog.Default()
	for _, opt := range opts {
		opt(&cfg)
	}
	l := &Limiter{
		client:   client,
		id:       randomID(),
		waiters:  make(map[string]*waiter),
		holders:  make(map[int]string),
		closedCh: make(chan struct{}),
	}
	if cfg.HolderID == "" {
		cfg.HolderID = l.id
	}
	l.err = cfg.validate()
	if l.err == nil && client == nil {
		l.err = &ConfigError{Package: "redislimiter", Field: "client", Reason: "must not be nil"}
	}
	cfg.KeyPrefix = keyspace.NormalizePrefix(cfg.KeyPrefix)
	l.cfg = cfg
	l.log = cfg.Logger
	if l.log == nil {
		l.log = slog.Default()
	}
	l.log = l.log.With(slog.String("component", "redislimiter"), slog.String("holder_id", cfg.HolderID))
	l.stop, l.cancel = context.WithCancel(context.Background())
	if l.err != nil {
		l.closed = true
		l.cancel()
		close(l.closedCh)
		return l
	}
	l.ps = client.Subscribe(l.stop, channelName(cfg.KeyPrefix))
	l.bg.Add(1)
	go l.listen()
	return l
}

// Err returns the configuration error kept by New, or nil.
func (l *Limiter) Err() error { return l.err }

// Config returns the configuration in use (after defaults and prefix wrapping).
func (l *Limiter) Config() Config { return l.cfg }

// Bucket returns the rate-limit key of shardID: shardID % MaxConcurrency.
func (l *Limiter) Bucket(shardID int) int {
	return sharding.ShardMaxConcurrencyKey(shardID, l.cfg.MaxConcurrency)
}

// WaitBucket blocks until this process holds the permit of shardID's bucket,
// then returns nil; the caller must call UnlockBucket(shardID) once IDENTIFY
// is written (or failed). It returns ctx.Err() when ctx ends first (leaving the
// queue), ErrClosed after Close, a *BudgetError (ErrBudgetExhausted) at the
// budget floor, the configuration error of New, or a wrapped Redis error when
// Redis cannot be reached: never a permit without Redis's agreement.
func (l *Limiter) WaitBucket(ctx context.Context, shardID int) error {
	if l.err != nil {
		return l.err
	}
	if shardID < 0 {
		return fmt.Errorf("redislimiter: wait bucket: shardID %d must be >= 0", shardID)
	}
	b := l.Bucket(shardID)
	ticket := randomID()
	w := &waiter{wake: make(chan int64, 1)}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.calls.Add(1)
	l.waiters[ticket] = w
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.waiters, ticket)
		l.mu.Unlock()
		l.calls.Done()
	}()
	return l.wait(ctx, b, ticket, w)
}

func (l *Limiter) wait(ctx context.Context, b int, ticket string, w *waiter) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		res, err := l.acquire(ctx, b, ticket)
		if err != nil {
			l.leave(b, ticket)
			if err := ctxErr(ctx); err != nil {
				return err
			}
			return fmt.Errorf("redislimiter: wait bucket %d: %w", b, err)
		}
		switch res.status {
		case statusGranted:
			if err := l.stopped(ctx); err != nil {
				l.leave(b, ticket) // the caller will not IDENTIFY: give the permit back
				return err
			}
			l.mu.Lock()
			l.holders[b] = ticket
			l.mu.Unlock()
			return nil
		case statusExhausted:
			return &BudgetError{Remaining: int(res.value), Reserve: l.cfg.BudgetReserve,
				ResetAfter: time.Duration(max(res.seq, 0)) * time.Millisecond}
		}
		sleep := l.pollDelay()
		if res.value >= 0 && time.Duration(res.value)*time.Microsecond < sleep {
			sleep = time.Duration(res.value) * time.Microsecond
		}
		if err := l.sleep(ctx, timer, w, sleep); err != nil {
			l.leave(b, ticket)
			return err
		}
	}
}

// sleep waits until the timer fires or a notification says the bucket frees
// now. A notification can only bring the wake-up earlier: a stale one (sent
// before the state the last acquire saw) then costs one extra round trip,
// never a late wake-up, and the ticket is refreshed at least every PollInterval.
func (l *Limiter) sleep(ctx context.Context, timer *time.Timer, w *waiter, d time.Duration) error {
	deadline := time.Now().Add(d)
	timer.Reset(d)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-l.stop.Done():
			return ErrClosed
		case <-timer.C:
			return nil
		case us := <-w.wake:
			if us <= 0 {
				return nil
			}
			if at := time.Now().Add(time.Duration(us) * time.Microsecond); at.Before(deadline) {
				deadline = at
				timer.Reset(time.Until(at))
			}
		}
	}
}

// ctxErr is ctx.Err(), also when the deadline has passed but ctx's own timer
// has not fired yet: with ContextTimeoutEnabled, go-redis's socket deadline
// (the same instant) can fire first and report an i/o timeout.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

func (l *Limiter) stopped(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if l.stop.Err() != nil {
		return ErrClosed
	}
	return nil
}

// pollDelay is PollInterval minus up to 10 % jitter, so that waiters of many
// processes do not poll in step.
func (l *Limiter) pollDelay() time.Duration {
	p := l.cfg.PollInterval
	return p - time.Duration(rand.Int64N(int64(p)/10+1))
}

// UnlockBucket starts the cooldown of shardID's bucket if this process holds
// its permit: the next grant comes no sooner than now + Window + Margin on the
// Redis clock. It does nothing when this process does not hold the permit.
// The Redis call is bounded by UnlockTimeout; a failure is logged, and the
// permit then expires after HoldTTL.
func (l *Limiter) UnlockBucket(shardID int) {
	if l.err != nil || shardID < 0 {
		return
	}
	b := l.Bucket(shardID)
	l.mu.Lock()
	ticket, ok := l.holders[b]
	delete(l.holders, b)
	l.mu.Unlock()
	log := l.log.With(slog.Int("shard_id", shardID), slog.Int("bucket", b))
	if !ok {
		log.Debug("unlock without a permit held here: ignored")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.UnlockTimeout)
	defer cancel()
	held, err := l.unlock(ctx, b, ticket)
	switch {
	case err != nil:
		log.Warn("unlock bucket: permit will expire after hold_ttl", slog.Any("error", err),
			slog.Duration("hold_ttl", l.cfg.HoldTTL))
	case !held:
		log.Warn("unlock bucket: permit had already expired (hold_ttl too short?)",
			slog.Duration("hold_ttl", l.cfg.HoldTTL))
	}
}

// Close stops the notification listener and makes every pending and future
// WaitBucket return ErrClosed (pending ones leave their queue first). It waits
// for them until ctx ends. Permits already held stay valid: UnlockBucket still
// works after Close, and an unlocked permit expires after HoldTTL.
func (l *Limiter) Close(ctx context.Context) {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		already := l.closed
		l.closed = true
		l.mu.Unlock()
		if already { // invalid config: nothing was started
			return
		}
		l.cancel()
		go func() {
			l.calls.Wait()
			_ = l.ps.Close()
			l.bg.Wait()
			close(l.closedCh)
		}()
	})
	select {
	case <-l.closedCh:
	case <-ctx.Done():
	}
}

// leave removes the ticket from its queue (and revokes a grant the caller never
// received) in the background, so that WaitBucket returns promptly even when
// Redis is slow. It runs on a fresh context bounded by UnlockTimeout; Close
// waits for it. A failure only delays the queue: the ticket expires after
// TicketTTL, a revoked grant after HoldTTL.
func (l *Limiter) leave(b int, ticket string) {
	l.bg.Add(1) // called from a WaitBucket in flight, so before Close's bg.Wait
	go func() {
		defer l.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), l.cfg.UnlockTimeout)
		defer cancel()
		if err := l.runLeave(ctx, b, ticket); err != nil {
			l.log.Debug("leave queue", slog.Int("bucket", b), slog.Any("error", err))
		}
	}()
}

func randomID() string {
	var buf [16]byte
	_, _ = crand.Read(buf[:]) // never fails (crypto/rand documents it)
	return hex.EncodeToString(buf[:])
}

func parseInt(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: %q", errUnexpectedReply, x)
		}
		return n, nil
	}
	return 0, fmt.Errorf("%w: %T", errUnexpectedReply, v)
}
