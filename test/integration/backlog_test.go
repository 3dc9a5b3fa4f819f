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
