package integration

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	fleetclient "github.com/shardfleet/shardfleet/pkg/fleet"
)

// BenchmarkCommandsEndToEnd measures what the fleet delivers: commands
// queued in Redis by pkg/fleet, sent by the owning workers (2 processes, 8
// shards), recorded by the fake. The send limit is opened wide on both sides
// (the fake: 1,000,000 per second; the workers: 120 per 1 ms window, so the
// limiter's 250 ms arrival margin is what paces a shard: 468 per second),
// so the figures are the machinery's, not Discord's 120 per minute. Latency
// is from Send's return to the fake's receipt (one clock: one machine).
//
//	go test -run '^$' -bench BenchmarkCommandsEndToEnd -benchtime 1x ./test/integration
func BenchmarkCommandsEndToEnd(b *testing.B) {
	const n, shards = 8000, 8
	needBinaries(b)
	f := newFleetWithFake(b, shards, startFake(b, shards, 20, "-send-limit", "1000000", "-send-window", "1s"))
	for _, id := range []string{"b1", "b2"} {
		f.startWorker(id, "GATEWAY_SEND_WINDOW=1ms")
	}
	f.waitAllReady("every shard READY")
	client := fleetclient.NewClient(f.client, prefix)
	for iter := 0; b.Loop(); iter++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		queuedAt := map[string]time.Time{}
		start := time.Now()
		for i := iter * n; i < (iter+1)*n; i++ {
			s := i % shards
			if _, err := client.Send(ctx, fleetclient.ToShard(s, shards), presenceCmd(s, i)); err != nil {
				b.Fatal(err)
			}
			queuedAt[fmt.Sprintf("s%d-c%d", s, i)] = time.Now()
		}
		queued := time.Since(start)
		var recs map[string]time.Time
		pollEvery(b, "every command recorded", 2*time.Minute, 200*time.Millisecond, func() bool {
			recs = map[string]time.Time{}
			for _, r := range f.fake.commands(b) {
				for s := range shards {
					if i := commandIndex(r, s); i >= 0 && r.ShardID == s {
						name := fmt.Sprintf("s%d-c%d", s, i)
						if _, dup := recs[name]; !dup {
							recs[name] = r.Time
						}
					}
				}
			}
			n := 0
			for name := range queuedAt {
				if _, ok := recs[name]; ok {
					n++
				}
			}
			return n == len(queuedAt)
		})
		var last time.Time
		lat := make([]time.Duration, 0, n)
		for name, at := range queuedAt {
			lat = append(lat, recs[name].Sub(at))
			if recs[name].After(last) {
				last = recs[name]
			}
		}
		slices.Sort(lat)
		total := last.Sub(start)
		b.ReportMetric(float64(n)/total.Seconds(), "commands/s")
		b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-ms")
		b.Logf("%d commands to %d shards: queued in %v, all on the wire after %v", n, shards, queued, total)
		cancel()
	}
}

// BenchmarkCommandsLatencyIdle is the added latency of one command when
// nothing is queued before it and the send limit is wide open:
// Redis → worker (woken by the pub/sub message) → gateway.
//
//	go test -run '^$' -bench BenchmarkCommandsLatencyIdle -benchtime 300x ./test/integration
func BenchmarkCommandsLatencyIdle(b *testing.B) {
	needBinaries(b)
	f := newFleetWithFake(b, 1, startFake(b, 1, 0, "-send-limit", "1000000", "-send-window", "1s"))
	f.startWorker("b1", "GATEWAY_SEND_WINDOW=1ms") // the limiter never waits at one command at a time
	f.waitAllReady("the shard READY")
	client := fleetclient.NewClient(f.client, prefix)
	ctx := context.Background()
	var lat []time.Duration
	i := 0
	for b.Loop() {
		at := time.Now()
		q, err := client.Send(ctx, fleetclient.ToShard(0, 1), presenceCmd(0, i))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := client.WaitOutcome(ctx, q[0].ID); err != nil {
			b.Fatal(err)
		}
		recs := f.fake.commands(b)
		lat = append(lat, recs[len(recs)-1].Time.Sub(at))
		i++
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
