package worker

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/shardfleet/shardfleet/internal/eventsink"
	"github.com/shardfleet/shardfleet/internal/testutil"
	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// TestFleetWinsBackShardWithoutLoss moves shards away from w1 and back within
// tens of ms, while events flow: every event w1's new gateways deliver after
// winning a shard back must reach the stream.
func TestFleetWinsBackShardWithoutLoss(t *testing.T) {
	const shards = 4
	h := newHarness(t, shards, gatewaytest.WithEventsPerSecond(400))
	w1 := h.start(h.config("w1", shards))
	eventually(t, "w1 READY", 20*time.Second, func() bool { return readyShards(w1) == shards })
	for range 3 {
		w2 := h.start(h.config("w2", shards))
		eventually(t, "w2 won a shard", 20*time.Second, func() bool { return len(w2.w.Status().Shards) > 0 })
		w2.stop(t) // hands its shards back to w1 at once
		eventually(t, "w1 won every shard back", 20*time.Second, func() bool { return readyShards(w1) == shards })
	}
	h.checkStream(t)
}

// TestFleetStreamCheckWaitsForAShardBetweenOwners: checked while its shards
// are between owners (handed off, the next owner not RESUMEd yet), the
// stream lacks nothing once the next owner has RESUMEd. The fake holds what
// it generated meanwhile for the RESUME; a check that skipped disconnected
// sessions counted that tail as lost (the "loss after winning a shard back"
// of the Sentinel benchmark: the check ran during the rebalance).
func TestFleetStreamCheckWaitsForAShardBetweenOwners(t *testing.T) {
	const shards = 2
	h := newHarness(t, shards, gatewaytest.WithEventsPerSecond(300))
	w1 := h.start(h.config("w1", shards))
	eventually(t, "w1 READY", 20*time.Second, func() bool { return readyShards(w1) == shards })
	w1.stop(t) // hands both shards off; nobody RESUMEs them yet
	sink, err := eventsink.New(h.redis.Client(t), eventsink.WithPrefix(testPrefix))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the fake holding events for the next owner", 10*time.Second, func() bool {
		held := 0
		for _, s := range h.fake.Sessions() {
			rec, err := sink.Session(context.Background(), eventsink.Shard{ID: s.ShardID, Count: s.ShardCount})
			if err == nil && !s.Connected && rec.SessionID == s.ID && s.Seq > rec.Sequence {
				held++
			}
		}
		return held == shards
	})
	h.start(h.config("w2", shards))
	h.checkStream(t)
}

// TestFleetCountsAndLogsADispatchNoWriterTook: a dispatch of a shard the
// worker holds no lease for is not dropped silently.
func TestFleetCountsAndLogsADispatchNoWriterTook(t *testing.T) {
	const shards = 2
	h := newHarness(t, shards)
	cfg := h.config("w1", shards)
	var logs testutil.LogBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	w1 := h.start(cfg)
	eventually(t, "w1 READY", 20*time.Second, func() bool { return readyShards(w1) == shards })
	unleased := gateway.New(h.fake.Token(), nil, gateway.WithShardID(1), gateway.WithShardCount(shards+1))
	w1.w.onEvent(unleased, "MESSAGE_CREATE", 7, json.RawMessage(`{}`))
	var dropped dto.Metric
	if _ = w1.w.m.eventsDropped.Write(&dropped); dropped.GetCounter().GetValue() != 1 {
		t.Errorf("shardfleet_events_dropped_total = %v, want 1", dropped.GetCounter().GetValue())
	}
	if !strings.Contains(logs.String(), "dispatch not committed") || !strings.Contains(logs.String(), "seq=7") {
		t.Errorf("the dropped dispatch was not logged:\n%s", logs.String())
	}
}
