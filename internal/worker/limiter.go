package worker

import (
	"context"
	"time"

	"github.com/shardfleet/shardfleet/pkg/sharding"
)

// meteredLimiter counts identify permits and measures the wait for them.
type meteredLimiter struct {
	sharding.RateLimiter
	m *metrics
}

var _ sharding.RateLimiter = (*meteredLimiter)(nil)

func (l *meteredLimiter) WaitBucket(ctx context.Context, shardID int) error {
	start := time.Now()
	err := l.RateLimiter.WaitBucket(ctx, shardID)
	l.m.identifyWait.Observe(time.Since(start).Seconds())
	if err == nil {
		l.m.identifies.Inc()
	}
	return err
}
