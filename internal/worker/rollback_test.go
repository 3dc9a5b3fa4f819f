package worker

import (
	"context"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/internal/testutil"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// TestFleetResumesAfterRedisRollback: Redis loses the last events it had
// committed for each shard, as when a replica is promoted before it received
// them (asynchronous replication). The worker sees it at its next commit and
// RESUMEs each shard from the durable seq: Discord replays the lost events,
// and the stream ends up with every dispatch exactly once, with no IDENTIFY.
func TestFleetResumesAfterRedisRollback(t *testing.T) {
	const shards = 2
	h := newHarness(t, shards, gatewaytest.WithEventsPerSecond(200))
	w1 := h.start(h.config("w1", shards))
	eventually(t, "w1 READY", 20*time.Second, func() bool { return readyShards(w1) == shards && w1.w.Ready() })
	c := h.redis.Client(t)
	keys := lease.NewKeys(testPrefix)
	ctx := context.Background()
	for id := range shards {
		shard := lease.ShardKey{ID: id, Count: shards}
		eventually(t, "20 events committed", 10*time.Second, func() bool {
			rec, err := w1.w.sink.Session(ctx, shard)
			return err == nil && rec.Sequence > 20
		})
		if y, err := testutil.RollBack(ctx, c, keys.Session(shard), keys.ShardEvents(shard), 10); err != nil || y < 1 {
			t.Fatalf("roll back shard %d: %d, %v", id, y, err)
		}
	}
	rollbacks := func() float64 {
		var m dto.Metric
		_ = w1.w.m.rollbacks.Write(&m)
		return m.GetCounter().GetValue()
	}
	eventually(t, "both rollbacks seen", 10*time.Second, func() bool { return rollbacks() >= shards })
	eventually(t, "every shard READY again", 20*time.Second, func() bool { return readyShards(w1) == shards })
	// The stream is checked once each shard's RESUME is over: the fake
	// numbers RESUMED after the replay, and a check between the two would
	// find the record at the fake's seq with RESUMED still to come.
	eventually(t, "every shard RESUMEd", 10*time.Second, func() bool { return h.fake.Stats().Resumes >= shards })
	h.checkStream(t)
	st := h.fake.Stats()
	if st.Identifies != shards || st.FailedResumes != 0 || st.DuplicateSessions != 0 || st.Resumes < shards {
		t.Errorf("after the rollback: %+v; want every shard RESUMEd, no new IDENTIFY", st)
	}
	var lost dto.Metric
	if _ = w1.w.m.rollbackLost.Write(&lost); lost.GetCounter().GetValue() != 0 {
		t.Errorf("%v sessions counted lost; Discord could replay them all", lost.GetCounter().GetValue())
	}
}
