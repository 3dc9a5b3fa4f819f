package worker

import (
	"log/slog"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// BenchmarkEndToEndCommitted: one fleet worker (4 shards) receives the fake's
// MESSAGE_CREATE load over real websockets and commits it to the Redis stream;
// events/s is the committed rate. The fake, the worker and redis-server share
// the machine's cores, so this is a floor for the worker alone:
//
//	go test -run '^$' -bench EndToEndCommitted -benchtime 200000x ./internal/worker
func BenchmarkEndToEndCommitted(b *testing.B) {
	const shards = 4
	h := newHarness(b, shards, gatewaytest.WithGuilds(64), gatewaytest.WithReplayBuffer(1_000_000))
	cfg := h.config("bench", shards)
	cfg.Logger = slog.New(slog.DiscardHandler)
	w := h.start(cfg)
	eventually(b, "every shard READY", 20*time.Second, func() bool { return readyShards(w) == shards })
	base := w.w.sink.Stats().Committed
	b.ResetTimer()
	start := time.Now()
	h.fake.SetEventsPerSecond(1e6) // more than the pipeline takes: measure its ceiling
	eventually(b, "b.N events committed", 10*time.Minute, func() bool {
		return w.w.sink.Stats().Committed-base >= uint64(b.N)
	})
	elapsed := time.Since(start)
	h.fake.SetEventsPerSecond(0)
	b.StopTimer()
	committed := w.w.sink.Stats().Committed - base
	b.ReportMetric(float64(committed)/elapsed.Seconds(), "events/s")
	if st := h.fake.Stats(); st.SequenceGaps != 0 || st.IdentifyViolations != 0 {
		b.Fatalf("fake invariants: %+v", st)
	}
}
