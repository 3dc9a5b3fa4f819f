package worker

import (
	"context"

	"github.com/shardfleet/shardfleet/internal/eventsink"
	"github.com/shardfleet/shardfleet/internal/keyspace"
)

// The shared state cache (internal/cache): the sink applies it in each
// commit; the worker only says what it keeps.

// cacheSinkOption makes the sink keep Config.Cache.
func (w *Worker) cacheSinkOption() eventsink.Option { return eventsink.WithCache(w.cfg.Cache) }

// publishCacheKinds tells readers (`worker cache dump`, pkg/fleet) which
// kinds the fleet keeps. Every worker writes it with its status, not only at
// start: a Redis that lost its data (restart without persistence, FLUSHALL)
// loses the key while the workers go on caching, and readers without it
// would take every kind for not kept. The fleet's workers share one CACHE,
// so the last writer is as right as the first.
func (w *Worker) publishCacheKinds(ctx context.Context) error {
	key := keyspace.NewKeys(w.cfg.KeyPrefix).CacheKinds()
	return w.cfg.Redis.Set(ctx, key, w.cfg.Cache.Kinds.String(), 0).Err()
}
