package sharding

import (
	"context"
	"log/slog"
	"sync"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// Close takes every shard out of the map under the lock, then closes them in
// parallel without it (a gateway's close may call back into the manager), then
// waits for background splits and closes the limiter it built.
func (m *manager) Close(ctx context.Context) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	snap := m.snapshot()
	m.storeLocked(map[int]*shard{})
	limiter, own := m.limiter, m.ownLimiter
	m.cancel()
	m.mu.Unlock()

	var wg sync.WaitGroup
	for _, sh := range snap {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sh.gw.Close(ctx)
		}()
	}
	wg.Wait()
	m.bg.Wait()
	if own && limiter != nil {
		limiter.Close(ctx)
	}
	m.logger.Info("shard manager closed", slog.Int("shards", len(snap)))
}

func (m *manager) CloseShard(ctx context.Context, shardID int) {
	m.mu.Lock()
	sh := m.takeLocked(shardID)
	m.mu.Unlock()
	if sh == nil {
		m.logger.Debug("close shard: not here", slog.Int("shard_id", shardID))
		return
	}
	sh.gw.Close(ctx)
}

func (m *manager) HandoffShard(ctx context.Context, shardID int) (gateway.ShardState, error) {
	m.mu.Lock()
	sh := m.takeLocked(shardID)
	m.mu.Unlock()
	if sh == nil {
		return gateway.ShardState{}, &ShardError{ShardID: shardID, ShardCount: m.ShardCount(), Err: ErrShardNotFound}
	}
	return sh.gw.Handoff(ctx), nil
}

// onClose is every gateway's CloseHandler (bound to its shard, so a wrapping
// GatewayCreateFunc doesn't confuse it): the shard stopped for good. A shard
// still opening is left to openOne (it sees the error in settle). An open one
// is removed, so it can be opened again, and on 4011 with AutoScaling it is
// split in a goroutine owned by the manager (Close waits for it). It runs on
// the gateway's goroutine, so it never waits for that gateway.
func (m *manager) onClose(sh *shard, gw gateway.Gateway, err error, reconnect bool) {
	defer func() {
		if m.cfg.CloseHandler != nil {
			m.cfg.CloseHandler(gw, err, reconnect)
		}
	}()
	m.mu.Lock()
	if m.snapshot()[sh.key.ID] != sh {
		m.mu.Unlock()
		return
	}
	if !sh.open {
		if sh.fatal == nil {
			sh.fatal = err
		}
		m.mu.Unlock()
		return
	}
	m.removeLocked(sh)
	resplit := m.cfg.AutoScaling && gateway.CloseStatus(err) == gateway.CloseShardingRequired && !m.closed
	if resplit {
		m.bg.Add(1)
	}
	m.mu.Unlock()

	log := m.logger.With(slog.Int("shard_id", sh.key.ID), slog.Int("shard_count", sh.key.Count))
	if !resplit {
		if m.cfg.CloseHandler == nil { // else the handler reports it
			log.Error("shard stopped", slog.Any("error", err))
		}
		return
	}
	go func() {
		defer m.bg.Done()
		if err := m.split(m.lifetime, sh.key); err != nil {
			log.Error("reshard", slog.Any("error", err))
		}
	}()
}
