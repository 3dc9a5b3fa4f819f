package worker

import (
	"context"
	"errors"
	"time"

	"github.com/shardfleet/shardfleet/pkg/redislimiter"
	"github.com/shardfleet/shardfleet/pkg/sharding"
)

// meteredLimiter counts identify permits and measures the wait for them. It
// reports the fleet's max_concurrency, so the ShardManager orders each
// bucket's shards by the real bucket count rather than assuming 1.
type meteredLimiter struct {
	sharding.RateLimiter
	m  *metrics
	mc int
	// onBudgetFloor, when set, is told (on the gateway's handshake
	// goroutine: it must not block) that a permit was refused because the
	// daily identify budget is at its floor.
	onBudgetFloor func(shardID int, err error)
	queue         *identifyQueue
}

var (
	_ sharding.RateLimiter            = (*meteredLimiter)(nil)
	_ sharding.MaxConcurrencyReporter = (*meteredLimiter)(nil)
)

// meter wraps l (which keys by mc buckets) with the worker's metrics and
// its budget-floor stop.
func (w *Worker) meter(l sharding.RateLimiter, mc int) *meteredLimiter {
	return &meteredLimiter{RateLimiter: l, m: w.m, mc: mc, onBudgetFloor: w.budgetFloor, queue: w.queue}
}

// MaxConcurrency implements sharding.MaxConcurrencyReporter.
func (l *meteredLimiter) MaxConcurrency() int { return l.mc }

func (l *meteredLimiter) WaitBucket(ctx context.Context, shardID int) error {
	start := time.Now()
	l.queue.enter()
	err := l.RateLimiter.WaitBucket(ctx, shardID)
	l.queue.leave()
	l.m.identifyWait.Observe(time.Since(start).Seconds())
	if err == nil {
		l.m.identifies.Inc()
	}
	if errors.Is(err, redislimiter.ErrBudgetExhausted) && l.onBudgetFloor != nil {
		l.onBudgetFloor(shardID, err)
	}
	return err
}
