package sharding

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// BenchmarkOpen64Shards: time to open S=64 shards with max_concurrency 4 and
// a 50 ms identify window (margin 2 ms, and 5 ms) against the fake, as a ratio to the
// ideal window * (ceil(S/mc) - 1) = 750 ms. The fake's window is 30 ms (below
// the limiter's, so read lag under load is no violation). Each iteration uses a fresh fake
// (its identify records and daily budget start anew); only OpenAll is timed.
//
//	go test -run '^$' -bench BenchmarkOpen64Shards -benchtime 3x ./pkg/sharding/
func BenchmarkOpen64Shards(b *testing.B) {
	for _, margin := range []time.Duration{2 * time.Millisecond, 5 * time.Millisecond} {
		b.Run("margin="+margin.String(), func(b *testing.B) { benchmarkOpen(b, margin) })
	}
}

func benchmarkOpen(b *testing.B, margin time.Duration) {
	const (
		shards = 64
		mc     = 4
		window = 50 * time.Millisecond
	)
	ideal := window * time.Duration((shards+mc-1)/mc-1)
	var total time.Duration
	violations := 0
	for range b.N {
		b.StopTimer()
		fake := gatewaytest.NewServer(gatewaytest.WithToken(fakeToken), gatewaytest.WithShards(shards),
			gatewaytest.WithMaxConcurrency(mc), gatewaytest.WithIdentifyWindow(window-20*time.Millisecond),
			gatewaytest.WithHeartbeatInterval(10*time.Second))
		m, err := NewFleet(fake.Token(), nil, WithLogger(slog.New(slog.DiscardHandler)), WithAPIURL(fake.APIURL()),
			WithRateLimiterConfigOpt(WithIdentifyWait(window), WithIdentifyMargin(margin)),
			WithGatewayConfigOpts(gateway.WithLogger(slog.New(slog.DiscardHandler))))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		b.StartTimer()
		start := time.Now()
		err = m.OpenAll(ctx)
		total += time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatalf("OpenAll: %v", err)
		}
		st := fake.Stats()
		if len(m.Shards()) != shards {
			b.Fatalf("%d shards open, want %d", len(m.Shards()), shards)
		}
		violations += st.IdentifyViolations
		m.Close(ctx)
		cancel()
		fake.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(total)/float64(b.N)/float64(ideal), "ratio")
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/open")
	// Identifies the fake saw sooner than its window (30 ms) after the previous
	// one of the key: 0 unless the machine is so loaded that reads lag by > 20 ms.
	b.ReportMetric(float64(violations)/float64(b.N), "violations/op")
}
