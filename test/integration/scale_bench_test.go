package integration

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// BenchmarkScale2000 runs 2,000 shards over 10 worker processes against one
// cmd/fakediscord process and one redis-server, all on this machine, at a low
// event rate, with the workers' default lease timings (TTL 15 s, renew 2 s)
// and a 1 s identify window (margin 250 ms, max_concurrency 64). It is a measurement, not a CI test (it
// takes about two minutes and most of two cores). Run it without -race:
//
//	go test -run '^$' -bench BenchmarkScale2000 -benchtime 1x -timeout 20m ./test/integration/
//
// SCALE_SHARDS, SCALE_WORKERS, SCALE_MC (max_concurrency) and SCALE_STEADY
// (steady-state window, e.g. 30s) change the shape; SCALE_SCRAPE_EVERY
// (e.g. 15s) reads every worker's /metrics that often through the settle
// and the window, as Prometheus would; SCALE_WORKER_ENV adds
// space-separated NAME=value pairs to every worker's environment (e.g.
// "COMPRESSION=none GOGC=50"). SCALE_EVENTS_PER_SECOND (default 50) is the
// fake's MESSAGE_CREATE rate over the whole fleet once every shard is READY,
// through the settle and the steady window; 0 leaves the shards only their
// heartbeat ACKs, like shards whose guilds are silent, so that a zlib-stream
// connection can give back its decoder (after 5 s quiet: pkg/gateway's
// zlibIdleAfter). A knob that is set but does not parse, or is out of range,
// fails the benchmark naming it (benchenv_test.go). Reported:
//
//   - identify_span_s / ideal_s and startup_ratio: the span from the first
//     IDENTIFY to the last, as the fake saw them, over the ideal pacing
//     (window+margin) * (ceil(S/mc)-1). That is the limiter's efficiency.
//   - startup_s and ready_ratio: from starting the first worker to every
//     shard READY in Redis, and that over ideal_s. A new fleet waits only the
//     lease's data-loss probe (renew interval + 1/8, 2.25 s) before it claims
//     (internal/lease doc.go); the bound the fleet must meet is
//     1.1 x ideal + renew interval, reported as bound_s.
//   - redis_cmds/s, redis_scripts/s, redis_cpu_%: INFO stats/commandstats/cpu
//     deltas over the steady window, once every shard is READY.
//   - worker_rss_KiB/shard: the workers' VmRSS summed, over the shard count,
//     at the end of the steady window; worker_rss_fall_KiB/shard is how much
//     lower that is than at the window's middle (above 0: RSS still falling);
//     worker_rss_median_KiB/shard and worker_rss_max_KiB/shard are the
//     median and the highest of the readings taken every 5 s through the
//     window's second half;
//     worker_stack_KiB/shard, worker_stack_used_KiB/shard, worker_heap_inuse_KiB/shard,
//     worker_heap_live_KiB/shard, worker_next_gc_KiB/shard and
//     worker_goroutines/shard break it down
//     (the workers' Go runtime figures from /metrics, summed the same way);
//     fake_rss_MiB and redis_rss_MiB for context.
func BenchmarkScale2000(b *testing.B) {
	for range b.N {
		runScale(b)
	}
}

func runScale(b *testing.B) {
	shardN := envInt(b, "SCALE_SHARDS", 2000)
	workerN := envInt(b, "SCALE_WORKERS", 10)
	mc := envInt(b, "SCALE_MC", 64)
	steady := envDuration(b, "SCALE_STEADY", 30*time.Second, false)
	// A window 5x shorter than Discord's 5 s, and Discord's margin.
	window := envDuration(b, "SCALE_WINDOW", time.Second, false)
	margin := envDuration(b, "SCALE_MARGIN", 250*time.Millisecond, true)
	const (
		ttl   = 15 * time.Second
		renew = 2 * time.Second
	)
	steadyRate := envFloat(b, "SCALE_EVENTS_PER_SECOND", 50, true)
	b.Logf("file limit %d", raiseFileLimit(b))
	needBinaries(b)
	if raceBuild {
		b.Skip("the scale benchmark measures the release build: run it without -race")
	}
	f := newFleetWithFake(b, shardN, startFake(b, shardN, 50,
		// The fake checks half the limiter's window: it times an IDENTIFY when
		// it reads it, and with 2,000 sockets on two busy cores that read
		// lagged by up to ~300 ms in our runs (with a 100 ms window, pairs the
		// limiter granted 127 ms apart arrived 5-40 ms apart); a real pacing
		// fault (two grants of one key at once) still shows.
		"-identify-window", (window/2).String(),
		"-max-concurrency", strconv.Itoa(mc), "-heartbeat-interval", "41.25s",
		"-guilds", strconv.Itoa(2*shardN), "-session-start-total", strconv.Itoa(10*shardN)))
	ctx := context.Background()
	start := time.Now()
	for i := range workerN {
		f.startWorkerWith("s"+strconv.Itoa(i), append([]string{
			"MAX_CONCURRENCY=" + strconv.Itoa(mc), "IDENTIFY_WINDOW=" + window.String(), "IDENTIFY_MARGIN=" + margin.String(),
			"LEASE_TTL=" + ttl.String(), "LEASE_RENEW_INTERVAL=" + renew.String(), "LOG_LEVEL=warn"},
			strings.Fields(os.Getenv("SCALE_WORKER_ENV"))...)...)
	}
	pollEvery(b, "every session READY at the fake", 5*time.Minute, 250*time.Millisecond, func() bool {
		return f.fake.stats(b).LiveSessions == shardN
	})
	pollEvery(b, "every shard READY in Redis", time.Minute, 250*time.Millisecond, func() bool {
		owners, _ := f.owners()
		return len(owners) == shardN
	})
	startup := time.Since(start)

	ids := f.fake.identifies(b)
	if len(ids) != shardN {
		b.Errorf("%d identifies, want %d (one per shard)", len(ids), shardN)
	}
	first, last := ids[0].Time, ids[0].Time
	for _, r := range ids {
		first, last = minTime(first, r.Time), maxTime(last, r.Time)
	}
	span := last.Sub(first)
	logViolations(b, ids)
	ideal := (window + margin) * time.Duration(math.Ceil(float64(shardN)/float64(mc))-1)

	f.fake.post(b, "/_fake/events-per-second?rate="+fmt.Sprint(steadyRate))
	stopScrape := scrapeWorkers(b, f)
	defer stopScrape()
	time.Sleep(5 * time.Second) // settle before the steady window (a measurement span, not a wait for a condition)
	s0, err := sampleRedis(ctx, f.client)
	if err != nil {
		b.Fatal(err)
	}
	time.Sleep(steady / 2) // the steady-state measurement window, first half
	rssMid := workersRSSKiB(b, f)
	// The second half, RSS sampled every 5 s: an idle worker's RSS rises
	// with its garbage and falls after each collection and scavenge, so
	// one reading depends on where in that cycle it falls.
	var rssHalf []float64
	for end := time.Now().Add(steady - steady/2); len(rssHalf) == 0 || time.Until(end) > 0; {
		time.Sleep(min(5*time.Second, max(time.Until(end), 0))) // the measurement window, not a wait for a condition
		rssHalf = append(rssHalf, float64(workersRSSKiB(b, f)))
	}
	stopScrape()
	s1, err := sampleRedis(ctx, f.client)
	if err != nil {
		b.Fatal(err)
	}
	wall := s1.at.Sub(s0.at).Seconds()
	var scripts int64
	for _, c := range scriptCommands {
		scripts += s1.calls[c] - s0.calls[c]
	}
	rss := workersRSSKiB(b, f)
	var runtimeMem [len(runtimeMemMetrics)]float64 // summed over the workers, from their /metrics
	for _, p := range f.workers {
		text := httpText(b, "http://"+envValue(p.cmd.Env, "HTTP_ADDR")+"/metrics")
		for i, m := range runtimeMemMetrics {
			runtimeMem[i] += metricValue(text, m.name)
		}
	}
	fakeRSS, _ := vmRSSKiB(f.fake.cmd.Process.Pid)
	mem, _ := redisInfo(ctx, f.client, "memory")
	redisRSS, _ := strconv.ParseFloat(mem["used_memory_rss"], 64)
	st := f.checkInvariants()
	owners, _ := f.owners()
	if len(owners) != shardN {
		b.Errorf("%d shards READY after the steady window, want %d", len(owners), shardN)
	}

	b.Logf("redis: %.1f commands/s (script-internal ones included), %.1f scripts/s, CPU %.2f%% of one core, RSS %.1f MiB; "+
		"workers: %.1f KiB RSS per shard; fake RSS %.1f MiB",
		float64(s1.commands-s0.commands)/wall, float64(scripts)/wall, 100*(s1.cpu-s0.cpu)/wall, redisRSS/(1<<20),
		float64(rss)/float64(shardN), float64(fakeRSS)/1024)
	b.ReportMetric(float64(st.IdentifyViolations), "identify_violations")
	b.ReportMetric(span.Seconds(), "identify_span_s")
	b.ReportMetric(ideal.Seconds(), "ideal_s")
	b.ReportMetric(span.Seconds()/ideal.Seconds(), "startup_ratio")
	b.ReportMetric(startup.Seconds(), "startup_s")
	b.ReportMetric(startup.Seconds()/ideal.Seconds(), "ready_ratio")
	bound := time.Duration(1.1*float64(ideal)) + renew
	b.ReportMetric(bound.Seconds(), "bound_s")
	b.ReportMetric(float64(s1.commands-s0.commands)/wall, "redis_cmds/s")
	b.ReportMetric(float64(scripts)/wall, "redis_scripts/s")
	b.ReportMetric(100*(s1.cpu-s0.cpu)/wall, "redis_cpu_%")
	b.ReportMetric(float64(rss)/float64(shardN), "worker_rss_KiB/shard")
	b.ReportMetric(float64(rssMid-rss)/float64(shardN), "worker_rss_fall_KiB/shard")
	slices.Sort(rssHalf)
	b.ReportMetric(rssHalf[len(rssHalf)/2]/float64(shardN), "worker_rss_median_KiB/shard")
	b.ReportMetric(rssHalf[len(rssHalf)-1]/float64(shardN), "worker_rss_max_KiB/shard")
	for i, m := range runtimeMemMetrics {
		b.ReportMetric(runtimeMem[i]/m.div/float64(shardN), m.unit)
	}
	b.ReportMetric(float64(fakeRSS)/1024, "fake_rss_MiB")
	b.ReportMetric(redisRSS/(1<<20), "redis_rss_MiB")
	b.Logf("%d shards, %d workers, mc %d: identifies %d (violations %d), first->last %v, ideal %v; start-up %v (bound %v); "+
		"steady %.0fs at %v events/s: %d commands, %d scripts, dispatches sent %d; per-command calls: %v",
		shardN, workerN, mc, st.Identifies, st.IdentifyViolations, span, ideal, startup, bound,
		wall, steadyRate, s1.commands-s0.commands, scripts, st.DispatchesSent, callDelta(s0, s1))
}

// scrapeWorkers, with SCALE_SCRAPE_EVERY set (e.g. 15s), reads every
// worker's /metrics that often, as Prometheus would, until the returned
// func is first called; without it, it does nothing.
func scrapeWorkers(b *testing.B, f *fleet) (stop func()) {
	every := envDuration(b, "SCALE_SCRAPE_EVERY", 0, false)
	if every == 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			for _, p := range f.workers {
				httpText(b, "http://"+envValue(p.cmd.Env, "HTTP_ADDR")+"/metrics")
			}
		}
	})
	return sync.OnceFunc(func() { close(done); wg.Wait() })
}

// workersRSSKiB is the workers' VmRSS, summed.
func workersRSSKiB(b *testing.B, f *fleet) int64 {
	var rss int64
	for id, p := range f.workers {
		kib, err := vmRSSKiB(p.cmd.Process.Pid)
		if err != nil {
			b.Fatalf("worker %s: %v", id, err)
		}
		rss += kib
	}
	return rss
}

// runtimeMemMetrics break the workers' RSS down (from the Go collector on
// their /metrics), per shard: goroutine stacks allocated and in use (as the
// last GC scanned them), heap spans in use, the heap
// size the next GC starts at (the heap grows to it between collections, and
// what it touched stays resident), the heap the last GC marked live (an idle
// worker collects seldom: the heap in use keeps garbage until then), and
// goroutines.
var runtimeMemMetrics = [...]struct {
	name, unit string
	div        float64
}{
	{"go_memstats_stack_inuse_bytes", "worker_stack_KiB/shard", 1024},
	{"go_gc_scan_stack_bytes", "worker_stack_used_KiB/shard", 1024},
	{"go_memstats_heap_inuse_bytes", "worker_heap_inuse_KiB/shard", 1024},
	{"go_gc_heap_live_bytes", "worker_heap_live_KiB/shard", 1024},
	{"go_memstats_next_gc_bytes", "worker_next_gc_KiB/shard", 1024},
	{"go_goroutines", "worker_goroutines/shard", 1},
}

func callDelta(s0, s1 redisSample) map[string]int64 {
	d := map[string]int64{}
	for k, v := range s1.calls {
		if n := v - s0.calls[k]; n > 0 {
			d[k] = n
		}
	}
	return d
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// logViolations logs, for each IDENTIFY the fake flagged, how long after the
// previous IDENTIFY of its key it arrived, so a pacing fault (a few ms) can
// be told from read lag (close to the fake's window).
func logViolations(b testing.TB, ids []gatewaytest.IdentifyRecord) {
	sorted := slices.Clone(ids)
	slices.SortFunc(sorted, func(x, y gatewaytest.IdentifyRecord) int { return x.Time.Compare(y.Time) })
	last := map[int]gatewaytest.IdentifyRecord{}
	var gaps []string
	for _, r := range sorted {
		if prev, ok := last[r.Key]; ok && r.Violation {
			gaps = append(gaps, fmt.Sprintf("key %d: shard %d %v after shard %d", r.Key, r.ShardID,
				r.Time.Sub(prev.Time).Round(time.Millisecond), prev.ShardID))
		}
		last[r.Key] = r
	}
	if len(gaps) > 0 {
		b.Logf("%d identify violations: %s", len(gaps), strings.Join(gaps, "; "))
	}
}
