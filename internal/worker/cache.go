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
// kinds the fleet keeps. Every worker writes it at start: the fleet's
// workers share one CACHE, so the last writer is as right as the first.
func (w *Worker) publishCacheKinds(ctx context.Context) {
	key := keyspace.NewKeys(w.cfg.KeyPrefix).CacheKinds()
	if err := w.cfg.Redis.Set(ctx, key, w.cfg.Cache.Kinds.String(), 0).Err(); err != nil {
		w.log.Warn("store the cache's kinds for its readers", "err", err)
	}
}
