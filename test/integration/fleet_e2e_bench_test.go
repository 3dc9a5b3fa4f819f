package integration

import (
	"context"
	"os"
	"testing"
	"time"
)

// BenchmarkFleetEndToEnd is the fleet's per-event cost end to end (issue 16):
// cmd/fakediscord in a process of its own floods MESSAGE_CREATE dispatches,
// one worker process receives them (COMPRESSION, by default the worker's
// zlib-stream) and commits every one, fenced, to the Redis stream. Over a
// steady window once every shard is READY it reports events committed per
// second of worker CPU (user + system, from the worker's
// process_cpu_seconds_total) and Redis's CPU per event (INFO cpu) beside it.
// The fake, Redis and the worker share the machine: CPU per event is the
// figure, committed/s is bounded by the fake. Run (no -race):
//
//	go test -run '^$' -bench BenchmarkFleetEndToEnd -benchtime 1x -timeout 10m ./test/integration/
//
// E2E_SHARDS (4), E2E_RATE (events/s the fake sends in all, 20000),
// E2E_STEADY (20s) and E2E_COMPRESSION (the worker's COMPRESSION, unset: its
// default) change the shape.
func BenchmarkFleetEndToEnd(b *testing.B) {
	shards := envInt(b, "E2E_SHARDS", 4)
	rate := envInt(b, "E2E_RATE", 20000)
	steady := envDuration(b, "E2E_STEADY", 20*time.Second, false)
	var extra []string
	if c := os.Getenv("E2E_COMPRESSION"); c != "" {
		extra = append(extra, "COMPRESSION="+c)
	}
	needBinaries(b)
	if raceBuild {
		b.Skip("the end-to-end benchmark measures the release build: run it without -race")
	}
	for range b.N {
		f := newFleetWithFake(b, shards, startFake(b, shards, float64(rate)))
		w := f.startWorkerWith("e2e", append([]string{"LOG_LEVEL=warn"}, extra...)...)
		f.waitAllReady("every shard READY")
		metricsURL := "http://" + envValue(w.cmd.Env, "HTTP_ADDR") + "/metrics"
		s0 := sampleE2E(b, f, metricsURL)
		time.Sleep(steady) // the measurement window, not a wait for a condition
		s1 := sampleE2E(b, f, metricsURL)

		events := s1.committed - s0.committed
		if events <= 0 {
			b.Fatalf("no event committed in %v", steady)
		}
		wall := s1.at.Sub(s0.at).Seconds()
		workerCPU, redisCPU := s1.workerCPU-s0.workerCPU, s1.redis.cpu-s0.redis.cpu
		b.ReportMetric(events/wall, "committed/s")
		b.ReportMetric((s1.sent-s0.sent)/wall, "sent/s")
		b.ReportMetric(events/workerCPU, "events/worker-CPU-s")
		b.ReportMetric(1e6*workerCPU/events, "worker_µs/event")
		b.ReportMetric(1e6*redisCPU/events, "redis_µs/event")
		b.ReportMetric(float64(s1.redis.commands-s0.redis.commands)/events, "redis_cmds/event")
		b.Logf("%d shards, fake at %d events/s, %.1f s: %.0f committed, %.0f sent; worker CPU %.2f s, Redis CPU %.2f s",
			shards, rate, wall, events, s1.sent-s0.sent, workerCPU, redisCPU)
	}
}

// e2eSample is what BenchmarkFleetEndToEnd reads at each end of its window.
type e2eSample struct {
	at                   time.Time
	committed, workerCPU float64
	sent                 float64
	redis                redisSample
}

func sampleE2E(b *testing.B, f *fleet, metricsURL string) e2eSample {
	b.Helper()
	m := httpText(b, metricsURL)
	s := e2eSample{at: time.Now(), committed: metricValue(m, "shardfleet_events_committed_total"),
		workerCPU: metricValue(m, "process_cpu_seconds_total"), sent: float64(f.fake.stats(b).DispatchesSent)}
	if s.committed < 0 || s.workerCPU < 0 {
		b.Fatalf("worker /metrics lacks shardfleet_events_committed_total or process_cpu_seconds_total")
	}
	r, err := sampleRedis(context.Background(), f.client)
	if err != nil {
		b.Fatal(err)
	}
	s.redis = r
	return s
}
