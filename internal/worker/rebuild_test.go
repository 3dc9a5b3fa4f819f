package worker

import (
	"context"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/shardfleet/shardfleet/internal/cache"
	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// TestFleetRebuildsTheCacheRedisLost: Redis loses each shard's session
// record, stream and cached guilds (a data loss; the leases survive, as when
// their holder re-asserts them). The worker sees it at its next commit and
// renews each shard's session, IDENTIFYing through the limiter: the new
// session's GUILD_CREATEs cache every guild again.
func TestFleetRebuildsTheCacheRedisLost(t *testing.T) {
	const shards, guilds = 2, 4 * 2 // newHarness's guilds
	h := newHarness(t, shards, gatewaytest.WithEventsPerSecond(200))
	cfg := h.config("w1", shards)
	cfg.Cache = cache.Config{Kinds: cache.Guilds}
	w1 := h.start(cfg)
	eventually(t, "w1 READY", 20*time.Second, func() bool { return readyShards(w1) == shards && w1.w.Ready() })
	c := h.redis.Client(t)
	keys := lease.NewKeys(testPrefix)
	ctx := context.Background()
	cached := func() int64 {
		var n int64
		for id := range shards {
			m, _ := c.SCard(ctx, keys.CacheShardGuilds(lease.ShardKey{ID: id, Count: shards})).Result()
			n += m
		}
		return n
	}
	eventually(t, "every guild cached", 10*time.Second, func() bool { return cached() == guilds })
	lost := map[int]string{}
	for id := range shards {
		shard := lease.ShardKey{ID: id, Count: shards}
		rec, err := w1.w.sink.Session(ctx, shard)
		if err != nil || rec.SessionID == "" {
			t.Fatalf("shard %d's record: %+v, %v", id, rec, err)
		}
		lost[id] = rec.SessionID
		doomed, err := c.Keys(ctx, keys.CacheGuildPrefix(shard)+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		doomed = append(doomed, keys.Session(shard), keys.ShardEvents(shard), keys.CacheShardGuilds(shard))
		if err := c.Del(ctx, doomed...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	rebuilds := func() float64 {
		var m dto.Metric
		_ = w1.w.m.cacheRebuilds.Write(&m)
		return m.GetCounter().GetValue()
	}
	eventually(t, "both shards rebuilt", 10*time.Second, func() bool { return rebuilds() == shards })
	eventually(t, "every guild cached again", 20*time.Second, func() bool { return cached() == guilds })
	for id, old := range lost {
		eventually(t, "a new session committed", 10*time.Second, func() bool {
			rec, err := w1.w.sink.Session(ctx, lease.ShardKey{ID: id, Count: shards})
			return err == nil && rec.SessionID != "" && rec.SessionID != old
		})
	}
	if st := h.fake.Stats(); st.Identifies != 2*shards || st.DuplicateSessions != 0 || st.IdentifyViolations != 0 {
		t.Errorf("after the rebuild: %+v; want one new IDENTIFY per shard, no duplicate session, no pacing violation", st)
	}
}
