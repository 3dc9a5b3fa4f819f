package worker

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

// reloadSlotsOnFailure makes a Redis Cluster client re-read its slot map as
// soon as a command fails in a way a topology change explains, rather than
// on go-redis's 60 s timer (ClusterStateReloadInterval). Other clients are
// left alone.
//
// go-redis v9 reloads the map itself on MOVED, ASK and READONLY only. When a
// master dies, its replica is promoted (node timeout plus election, seconds),
// but nobody answers MOVED for the dead master's slots: every command to them
// still dials the dead address (connection refused), retries it, and fails.
// All the fleet's keys share one hash tag, so every shard stopped until the
// timer fired (issue 15: 40 s after a kill -9). Until the promotion, the
// other nodes answer CLUSTERDOWN, and a reload then still finds the old map;
// each later failure asks again, so the map is fresh within one reload of the
// promotion.
//
// ReloadState is cheap to call per failure: go-redis runs at most one reload
// at a time, in the background, coalesces requests made meanwhile, and waits
// 200 ms between reloads. Installing the hook twice only asks twice.
func reloadSlotsOnFailure(c redis.UniversalClient) {
	if cc, ok := c.(*redis.ClusterClient); ok {
		cc.AddHook(slotReloadHook{cc})
	}
}

// slotReloadHook is reloadSlotsOnFailure's hook. A Cluster client's hooks run
// around its routing and retries, so they see a command's final error; its
// DialHook is never called (dials happen in the node clients).
type slotReloadHook struct{ cc *redis.ClusterClient }

func (h slotReloadHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h slotReloadHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.reloadIfStale(ctx, err)
		return err
	}
}

func (h slotReloadHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.reloadIfStale(ctx, err)
		return err
	}
}

func (h slotReloadHook) reloadIfStale(ctx context.Context, err error) {
	if topologyMayHaveChanged(err) {
		h.cc.ReloadState(ctx)
	}
}

// topologyMayHaveChanged reports whether err may come from routing by a stale
// slot map: a node unreachable, not answering in time, or the cluster saying
// it is reconfiguring. Replies such as redis.Nil, script errors or WRONGTYPE
// are not; neither is the caller's cancellation or a closed client.
func topologyMayHaveChanged(err error) bool {
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, redis.ErrClosed):
		return false
	case redis.IsClusterDownError(err), redis.IsTryAgainError(err), redis.IsMasterDownError(err):
		return true
	}
	var reply redis.Error
	return !errors.As(err, &reply)
}
