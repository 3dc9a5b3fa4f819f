package redislimiter

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// max_concurrency itself comes from GET /gateway/bot: sharding.FetchGatewayBot.

// StoreMaxConcurrency stores max_concurrency for the fleet under keyPrefix
// (wrapped like Config.KeyPrefix; "" means DefaultKeyPrefix).
func StoreMaxConcurrency(ctx context.Context, client redis.UniversalClient, keyPrefix string, n int) error {
	if n < 1 {
		return fmt.Errorf("redislimiter: store max_concurrency: %d must be >= 1", n)
	}
	if err := client.Set(ctx, maxConcKey(keyPrefix), n, 0).Err(); err != nil {
		return fmt.Errorf("redislimiter: store max_concurrency: %w", err)
	}
	return nil
}

// LoadMaxConcurrency reads the value StoreMaxConcurrency stored, or returns
// ErrNoMaxConcurrency.
func LoadMaxConcurrency(ctx context.Context, client redis.UniversalClient, keyPrefix string) (int, error) {
	n, err := client.Get(ctx, maxConcKey(keyPrefix)).Int()
	if errors.Is(err, redis.Nil) {
		return 0, ErrNoMaxConcurrency
	}
	if err != nil {
		return 0, fmt.Errorf("redislimiter: load max_concurrency: %w", err)
	}
	if n < 1 {
		return 0, fmt.Errorf("redislimiter: load max_concurrency: stored value %d must be >= 1", n)
	}
	return n, nil
}
