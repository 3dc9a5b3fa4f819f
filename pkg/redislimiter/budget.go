package redislimiter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// BudgetState is the daily session_start_limit budget kept in Redis.
type BudgetState struct {
	Remaining  int           // session starts left; every grant takes one
	ResetAfter time.Duration // until Discord resets the budget (and the key expires)
}

// SetBudget stores the fleet's session_start_limit (remaining and reset_after,
// as /gateway/bot reports them). Every grant then decrements it in the grant
// script, and at Config.BudgetReserve WaitBucket returns ErrBudgetExhausted.
// The key expires at the reset; without a key there is no budget limit.
func (l *Limiter) SetBudget(ctx context.Context, remaining int, resetAfter time.Duration) error {
	if l.err != nil {
		return l.err
	}
	switch {
	case remaining < 0:
		return fmt.Errorf("redislimiter: set budget: remaining %d must be >= 0", remaining)
	case resetAfter < time.Millisecond:
		return fmt.Errorf("redislimiter: set budget: resetAfter %v must be >= 1ms", resetAfter)
	}
	key := budgetKey(l.cfg.KeyPrefix)
	_, err := l.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "remaining", remaining)
		p.PExpire(ctx, key, resetAfter)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redislimiter: set budget: %w", err)
	}
	return nil
}

// Budget reads the stored budget; ok is false when none is stored (or it reset).
func (l *Limiter) Budget(ctx context.Context) (state BudgetState, ok bool, err error) {
	if l.err != nil {
		return BudgetState{}, false, l.err
	}
	key := budgetKey(l.cfg.KeyPrefix)
	var rem *redis.StringCmd
	var ttl *redis.DurationCmd
	_, err = l.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		rem = p.HGet(ctx, key, "remaining")
		ttl = p.PTTL(ctx, key)
		return nil
	})
	if errors.Is(err, redis.Nil) {
		return BudgetState{}, false, nil
	}
	if err != nil {
		return BudgetState{}, false, fmt.Errorf("redislimiter: read budget: %w", err)
	}
	n, err := rem.Int()
	if err != nil {
		return BudgetState{}, false, fmt.Errorf("redislimiter: read budget: %w", err)
	}
	return BudgetState{Remaining: n, ResetAfter: max(ttl.Val(), 0)}, true, nil
}

// QuietLeft is how long the quiet period after a Redis data loss (see the
// package doc) still keeps every bucket from being granted; 0 when none is
// in force.
func (l *Limiter) QuietLeft(ctx context.Context) (time.Duration, error) {
	if l.err != nil {
		return 0, l.err
	}
	d, err := l.client.PTTL(ctx, scriptKeys(l.cfg.KeyPrefix, 0)[keyQuiet]).Result()
	if err != nil {
		return 0, err
	}
	return max(d, 0), nil
}
