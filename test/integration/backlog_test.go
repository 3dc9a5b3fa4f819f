package integration

import (
	"bufio"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Backlog settings of the tests here: small enough that a few seconds of
// Redis refusing writes fill them at a few thousand events/s.
const (
	backlogShard  = 512 << 10
	backlogWorker = 768 << 10
)

// backlogWorkerEnv is what a worker needs on top of workerEnv to sit out
// Redis write pauses: small backlog bounds, and a lease whose renew deadline
// (3 s) outlasts a pause (the default test lease self-fences after 1 s).
func backlogWorkerEnv(shard, worker int64) []string {
	return []string{"BACKLOG_SHARD_BYTES=" + strconv.FormatInt(shard, 10),
		"BACKLOG_WORKER_BYTES=" + strconv.FormatInt(worker, 10), "LEASE_TTL=4s", "LEASE_RENEW_DEADLINE=3s"}
}

// startBacklogFake starts a fake whose sessions keep 200,000 dispatches for
// RESUME: a paused shard drops what the socket buffers still held when it
// closed (zlib-stream packs tens of thousands of events into them), and its
// RESUME needs all of them replayed.
func startBacklogFake(t testing.TB, shards int, eventsPerSecond float64) *fleet {
	t.Helper()
	needBinaries(t)
	return newFleetWithFake(t, shards, startFake(t, shards, eventsPerSecond, "-replay-buffer", "200000"))
}

// metricValue reads one unlabelled sample from a /metrics text, or -1.
func metricValue(text, name string) float64 {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// pauseRedisWritesUntil pauses Redis writes (CLIENT PAUSE WRITE) for d,
// again d after each pause ran out (so lease renewals get through), until
// cond holds (or timeout). It returns with Redis writing again.
func pauseRedisWritesUntil(f *fleet, d, timeout time.Duration, what string, cond func() bool) {
	f.t.Helper()
	ctx := context.Background()
	var next time.Time
	poll(f.t, what, timeout, func() bool {
		if time.Now().After(next) {
			if _, err := f.redis.Do(ctx, "CLIENT", "PAUSE", strconv.FormatInt(d.Milliseconds(), 10), "WRITE"); err != nil {
				f.t.Fatalf("CLIENT PAUSE: %v", err)
			}
			next = time.Now().Add(2 * d)
		}
		return cond()
	})
	if _, err := f.redis.Do(ctx, "CLIENT", "UNPAUSE"); err != nil {
		f.t.Fatalf("CLIENT UNPAUSE: %v", err)
	}
}

// TestBacklogBoundedWhileRedisPauses: Redis refuses writes for seconds at a
// time while the fake sends thousands of events a second. The worker's
// backlog fills its bound, the shards stop reading and RESUME once Redis
// takes writes again; each pause is logged and counted, the backlog stays
// within its bound, and every dispatch the fake sent is in the stream once.
func TestBacklogBoundedWhileRedisPauses(t *testing.T) {
	const shards = 2
	f := startBacklogFake(t, shards, 1500)
	w := f.startWorkerWith("w1", backlogWorkerEnv(backlogShard, backlogWorker)...)
	f.waitAllReady("every shard READY")
	metricsURL := "http://" + envValue(w.cmd.Env, "HTTP_ADDR") + "/metrics"
	for round := 1; round <= 3; round++ {
		pauseRedisWritesUntil(f, 1500*time.Millisecond, 20*time.Second, "a shard to pause on its backlog", func() bool {
			return linesWith(w, "backlog full") >= round
		})
		m := httpText(t, metricsURL)
		if b := metricValue(m, "shardfleet_backlog_bytes"); b < 0 || b > backlogWorker+64<<10 {
			t.Fatalf("round %d: backlog %v bytes, want within BACKLOG_WORKER_BYTES %d + one message a shard", round, b, backlogWorker)
		}
		poll(t, "the paused shards to resume", 20*time.Second, func() bool {
			return linesWith(w, "gateway backlog drained: resuming") >= linesWith(w, "backlog full")
		})
	}
	f.waitAllReady("every shard READY after the pauses")
	f.checkStream()
	st := f.checkInvariants()
	if st.Identifies != shards {
		t.Errorf("%d IDENTIFYs, want %d: a backlog pause must RESUME", st.Identifies, shards)
	}
	m := httpText(t, metricsURL)
	if p := metricValue(m, "shardfleet_backlog_pauses_total"); p < 3 {
		t.Errorf("shardfleet_backlog_pauses_total = %v, want at least 3", p)
	}
	if n := metricValue(m, "shardfleet_frames_read_total"); n <= 0 || n != metricValue(m, "shardfleet_events_received_total") {
		t.Errorf("frames read %v, events received %v: want equal (nothing left queued) and positive",
			n, metricValue(m, "shardfleet_events_received_total"))
	}
}

// BenchmarkBacklogRSSUnderWritePauses is the measurement: one worker,
// 4 shards, ~20k events/s from the fake, Redis writes paused by CLIENT PAUSE
// 2000 WRITE again and again for 60 s, then 30 s to catch up. It reports the
// worker's peak VmRSS (sampled every 100 ms) against its resting RSS and the
// pauses it took. Default backlog settings (4 MiB a shard, 256 MiB a
// worker). Not a CI test; run it without -race:
//
//	go test -run '^$' -bench BenchmarkBacklogRSSUnderWritePauses -benchtime 1x -timeout 10m ./test/integration/
//
// BACKLOG_BENCH_EPS and BACKLOG_BENCH_PAUSE (e.g. 20s) change the load and
// the length of the paused stretch.
func BenchmarkBacklogRSSUnderWritePauses(b *testing.B) {
	for range b.N {
		runBacklogRSS(b)
	}
}

func runBacklogRSS(b *testing.B) {
	const shards = 4
	eps := envInt(b, "BACKLOG_BENCH_EPS", 20000)
	paused := envDuration(b, "BACKLOG_BENCH_PAUSE", 60*time.Second, false)
	needBinaries(b)
	f := newFleetWithFake(b, shards, startFake(b, shards, float64(eps), "-replay-buffer", "1000000"))
	w := f.startWorkerWith("w1", "LEASE_TTL=6s", "LEASE_RENEW_DEADLINE=4s", "EVENT_STREAM_MAXLEN=100000")
	f.waitAllReady("every shard READY")
	metricsURL := "http://" + envValue(w.cmd.Env, "HTTP_ADDR") + "/metrics"
	rss := func() int64 {
		kib, err := vmRSSKiB(w.cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		return kib
	}
	time.Sleep(5 * time.Second) // steady load before the resting figure (a measurement, not a wait for a condition)
	rest, peak := rss(), int64(0)
	ctx := context.Background()
	sample := time.NewTicker(100 * time.Millisecond)
	defer sample.Stop()
	start, nextPause := time.Now(), time.Time{}
	for time.Since(start) < paused+30*time.Second {
		if now := time.Now(); now.Sub(start) < paused && now.After(nextPause) {
			if _, err := f.redis.Do(ctx, "CLIENT", "PAUSE", "2000", "WRITE"); err != nil {
				b.Fatal(err)
			}
			nextPause = now.Add(2 * time.Second)
		}
		<-sample.C
		peak = max(peak, rss())
	}
	m := httpText(b, metricsURL)
	b.ReportMetric(float64(rest)/1024, "rest_rss_MiB")
	b.ReportMetric(float64(peak)/1024, "peak_rss_MiB")
	b.ReportMetric(metricValue(m, "shardfleet_backlog_pauses_total"), "pauses")
	b.ReportMetric(metricValue(m, "shardfleet_backlog_over_bound_seconds_total"), "paused_s")
	b.ReportMetric(metricValue(m, "shardfleet_frames_read_total"), "frames_read")
	b.ReportMetric(metricValue(m, "shardfleet_events_committed_total"), "committed")
	b.ReportMetric(float64(linesWith(w, "backlog full")), "pause_log_lines")
}
