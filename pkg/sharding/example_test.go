package sharding_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/sharding"
)

// A bot's shards, as with disgo's sharding package: the count and
// max_concurrency come from GET /gateway/bot, every shard is opened, buckets
// in order, and each event arrives with its shard.
func Example() {
	handler := func(gw gateway.Gateway, t gateway.EventType, seq int, data json.RawMessage) {
		slog.Info("event", slog.Int("shard_id", gw.ShardID()), slog.String("type", string(t)))
	}
	m := sharding.New("BOT_TOKEN", handler,
		sharding.WithAutoScaling(true),
		sharding.WithGatewayConfigOpts(gateway.WithIntents(gateway.IntentsNonPrivileged)),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := m.(sharding.FleetShardManager).OpenAll(ctx); err != nil {
		slog.Error("some shards failed", slog.Any("error", err))
	}
	defer m.Close(context.Background())
}

// A fleet worker hands a shard to another process with its session, which
// the other process RESUMEs: no IDENTIFY, no event lost.
func ExampleFleetShardManager_HandoffShard() {
	ctx := context.Background()
	from, _ := sharding.NewFleet("BOT_TOKEN", nil, sharding.WithShardCount(16))
	to, _ := sharding.NewFleet("BOT_TOKEN", nil, sharding.WithShardCount(16))
	state, err := from.HandoffShard(ctx, 3)
	if err != nil {
		return
	}
	// state is what a worker stores in Redis; the new owner resumes from it.
	_ = to.OpenShardWithState(ctx, sharding.ShardKey{ID: 3, Count: 16}, state)
}
