package sharding

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// identifyOrder makes the shards of one batch take their bucket's permit in ID
// order. If every shard dialled at once, the limiter's FIFO would serve them in
// the order their HELLOs came; instead a shard starts its Open (and, to be
// sure, its first WaitBucket) only once the previous shard of its bucket in
// the batch got its permit or ended its Open. Its dial and HELLO then overlap
// the previous shard's window, so pacing is still the limiter's alone.
type identifyOrder struct {
	turns map[int]*orderTurn
}

// orderTurn is one shard's place in its bucket's line. A nil *orderTurn means
// no ordering: the limiter is used as is.
type orderTurn struct {
	prev   <-chan struct{} // closed when the previous shard of the bucket is served; nil for the first
	served chan struct{}
	once   sync.Once
	passed atomic.Bool // the first WaitBucket went through: later ones (reconnects) don't wait
}

func newIdentifyOrder(reqs []openRequest, maxConcurrency int) *identifyOrder {
	o := &identifyOrder{turns: make(map[int]*orderTurn, len(reqs))}
	last := map[int]*orderTurn{} // bucket -> last turn so far
	for _, req := range reqs {
		t := &orderTurn{served: make(chan struct{})}
		key := ShardMaxConcurrencyKey(req.key.ID, maxConcurrency)
		if p := last[key]; p != nil {
			t.prev = p.served
		}
		last[key] = t
		o.turns[req.key.ID] = t
	}
	return o
}

func (o *identifyOrder) turn(shardID int) *orderTurn { return o.turns[shardID] }

// wait blocks until the previous shard of the bucket was served (its permit
// granted, or its Open over), or ctx ends.
func (t *orderTurn) wait(ctx context.Context) error {
	if t == nil || t.prev == nil {
		return nil
	}
	select {
	case <-t.prev:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for the previous shard of the bucket: %w", ctx.Err())
	}
}

// done marks the turn served: the next shard of the bucket may queue.
func (t *orderTurn) done() {
	if t != nil {
		t.once.Do(func() { close(t.served) })
	}
}

// limiter wraps inner so its first WaitBucket keeps the turn.
func (t *orderTurn) limiter(inner RateLimiter) gateway.IdentifyLimiter {
	if t == nil {
		return inner
	}
	return &orderedLimiter{turn: t, inner: inner}
}

type orderedLimiter struct {
	turn  *orderTurn
	inner RateLimiter
}

var _ gateway.IdentifyLimiter = (*orderedLimiter)(nil)

func (l *orderedLimiter) WaitBucket(ctx context.Context, shardID int) error {
	t := l.turn
	if !t.passed.Load() {
		if err := t.wait(ctx); err != nil {
			return err
		}
	}
	t.passed.Store(true)
	err := l.inner.WaitBucket(ctx, shardID)
	t.done()
	return err
}

func (l *orderedLimiter) UnlockBucket(shardID int) { l.inner.UnlockBucket(shardID) }
