package sharding

import (
	"context"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// MaxConcurrency is the default number of shards that can log in at the same time.
const MaxConcurrency = 1

// RateLimiter limits how many shards can log in to Discord at the same time.
//
// A permit is held from WaitBucket until UnlockBucket; the next permit of the same
// bucket (shardID % max_concurrency) comes no sooner than the unlock plus the
// identify window. The gateway calls WaitBucket before every IDENTIFY and never
// before a RESUME.
type RateLimiter interface {
	// Close gracefully closes the RateLimiter.
	// If the context deadline is exceeded, the RateLimiter will be closed immediately.
	Close(ctx context.Context)
	// WaitBucket waits for the given shardID bucket to be available for new logins.
	// If the context deadline is exceeded, WaitBucket will return immediately and no login will be attempted.
	WaitBucket(ctx context.Context, shardID int) error
	// UnlockBucket unlocks the given shardID bucket.
	UnlockBucket(shardID int)
}

// Every RateLimiter is a gateway.IdentifyLimiter.
var _ gateway.IdentifyLimiter = RateLimiter(nil)

// ShardMaxConcurrencyKey returns the bucket the given shardID with maxConcurrency belongs to.
func ShardMaxConcurrencyKey(shardID int, maxConcurrency int) int {
	if maxConcurrency <= 0 {
		maxConcurrency = 1
	}
	return shardID % maxConcurrency
}

// MaxConcurrencyReporter is an optional interface of a RateLimiter: the
// number of buckets it keys by. The ShardManager orders each bucket's shards
// by it; a limiter given with WithRateLimiter that does not report it is
// assumed to have RateLimiterConfig's MaxConcurrency (WithMaxConcurrency in
// WithRateLimiterConfigOpt, else max_concurrency from /gateway/bot, else 1).
// Too low a value is safe but serializes the dials of different buckets.
type MaxConcurrencyReporter interface {
	MaxConcurrency() int
}
