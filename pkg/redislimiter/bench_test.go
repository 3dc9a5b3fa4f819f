package redislimiter

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/redistest"
)

// Cold start of the benchmark: S shards, max_concurrency mc, window
// 100 ms, margin 10 ms; each shard unlocks right after its grant.
const (
	coldShards  = 256
	coldMC      = 16
	coldGroups  = 8
	coldWindow  = 100 * time.Millisecond
	coldMargin  = 10 * time.Millisecond
	coldPoll    = time.Second
	coldHoldTTL = 5 * time.Second
)

func coldOpts(prefix string) []ConfigOpt {
	return []ConfigOpt{
		WithMaxConcurrency(coldMC), WithWindow(coldWindow), WithMargin(coldMargin), WithHoldTTL(coldHoldTTL),
		WithPollInterval(coldPoll), WithTicketTTL(5 * coldPoll), WithKeyPrefix(prefix),
		WithGrantLog(true), WithLogger(discard),
	}
}

// coldIdeal is (window + margin) * (ceil(S/mc) - 1).
func coldIdeal() time.Duration {
	return (coldWindow + coldMargin) * time.Duration((coldShards+coldMC-1)/coldMC-1)
}

// BenchmarkColdStart: 8 limiters (goroutine groups, each with its own Redis
// client) in one process start 256 shards at once. Reports the wall time to the
// last grant as a ratio to the ideal.
func BenchmarkColdStart(b *testing.B) {
	s := redistest.Start(b)
	var ratios, holds, wakes []float64
	for b.Loop() {
		prefix := uniquePrefix(b)
		var ls []*Limiter
		for range coldGroups {
			ls = append(ls, New(newClient(b, s.Addr()), coldOpts(prefix)...))
		}
		settle(b, ls[0]) // a running Redis: its epoch exists
		start := time.Now()
		var wg sync.WaitGroup
		for shard := range coldShards {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l := ls[shard%coldGroups]
				if err := l.WaitBucket(context.Background(), shard); err != nil {
					b.Error(err)
					return
				}
				l.UnlockBucket(shard)
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		ratios = append(ratios, float64(elapsed)/float64(coldIdeal()))
		entries := mustLog(b, ls[0])
		checkLog(b, entries, rulesOf(ls[0]))
		h, w := stepBreakdown(entries, coldWindow+coldMargin)
		holds, wakes = append(holds, h...), append(wakes, w...)
		for _, l := range ls {
			l.Close(context.Background())
		}
	}
	b.ReportMetric(mean(ratios), "ratio_to_ideal")
	b.ReportMetric(slices.Max(ratios), "worst_ratio")
	calls, usec := evalshaStats(b, newClient(b, s.Addr()))
	b.ReportMetric(float64(usec)/float64(max(calls, 1)), "script_server_us")
	b.ReportMetric(float64(calls)/float64(b.N), "scripts_per_run")
	b.ReportMetric(mean(holds), "hold_us")
	b.ReportMetric(mean(wakes), "wake_late_us")
}

// stepBreakdown splits each step of a bucket's chain, on the Redis clock, into
// the hold (grant -> unlock: reply, caller, unlock call) and the wake lateness
// (unlock + cooldown -> next grant: notification, timer, grant call).
func stepBreakdown(entries []LogEntry, cooldown time.Duration) (holds, wakes []float64) {
	grantAt := map[int]int64{}
	unlockAt := map[int]int64{}
	for _, e := range entries {
		switch e.Event {
		case "grant":
			if u, ok := unlockAt[e.Bucket]; ok {
				wakes = append(wakes, float64(e.Micros-u-cooldown.Microseconds()))
			}
			grantAt[e.Bucket] = e.Micros
		case "unlock":
			holds = append(holds, float64(e.Micros-grantAt[e.Bucket]))
			unlockAt[e.Bucket] = e.Micros
		}
	}
	return holds, wakes
}

// BenchmarkColdStartProcesses: the same cold start from 8 OS processes (this
// binary re-run as helpers), all starting at one agreed wall-clock instant.
// The ratio is measured on the Redis clock (same host): last grant minus the
// start instant, over the ideal.
func BenchmarkColdStartProcesses(b *testing.B) {
	s := redistest.Start(b)
	var ratios []float64
	for b.Loop() {
		prefix := uniquePrefix(b)
		settler := New(newClient(b, s.Addr()), coldOpts(prefix)...)
		settle(b, settler) // a running Redis: its epoch exists
		settler.Close(context.Background())
		startAt := time.Now().Add(3 * time.Second)
		var cmds []*exec.Cmd
		for g := range coldGroups {
			cmd := helperCmd(helperConfig{mode: "cold", addr: s.Addr(), prefix: prefix, mc: coldGroups,
				shard: g, seed: uint64(startAt.UnixMicro())})
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			cmds = append(cmds, cmd)
		}
		for _, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				b.Fatalf("cold helper: %v", err)
			}
		}
		l := New(newClient(b, s.Addr()), coldOpts(prefix)...)
		grants := checkLog(b, mustLog(b, l), rulesOf(l))
		l.Close(context.Background())
		if len(grants) != coldShards {
			b.Fatalf("%d grants, want %d", len(grants), coldShards)
		}
		last := grants[len(grants)-1].Micros
		ratios = append(ratios, float64(last-startAt.UnixMicro())/float64(coldIdeal().Microseconds()))
	}
	b.ReportMetric(mean(ratios), "ratio_to_ideal")
	b.ReportMetric(slices.Max(ratios), "worst_ratio")
}

// runColdHelper is the "cold" helper mode: shards g, g+8, ... of 256, all
// started at the instant given in RL_SEED (unix µs).
func runColdHelper(client *redis.Client, prefix string, group int, startMicros int64) int {
	l := New(client, coldOpts(prefix)...)
	defer l.Close(context.Background())
	// Open the connections before the start so that the measurement is the
	// limiter's, not the dialler's.
	_ = client.Ping(context.Background()).Err()
	if d := time.Until(time.UnixMicro(startMicros)); d > 0 {
		time.Sleep(d) // wait for the agreed start instant (not a condition)
	} else {
		fmt.Fprintln(os.Stderr, "cold helper started late by", -d, "(the ratio is pessimistic)")
	}
	var wg sync.WaitGroup
	failed := false
	var mu sync.Mutex
	for shard := group; shard < coldShards; shard += coldGroups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.WaitBucket(context.Background(), shard); err != nil {
				mu.Lock()
				failed = true
				mu.Unlock()
				return
			}
			l.UnlockBucket(shard)
		}()
	}
	wg.Wait()
	if failed {
		return 1
	}
	return 0
}

// BenchmarkPing is the round trip to compare BenchmarkGrantFree with.
func BenchmarkPing(b *testing.B) {
	s := redistest.Start(b)
	c := newClient(b, s.Addr())
	for b.Loop() {
		if err := c.Ping(context.Background()).Err(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGrantFree: WaitBucket on a free bucket (every iteration uses a new
// bucket, so none waits): one script round trip.
func BenchmarkGrantFree(b *testing.B) {
	s := redistest.Start(b)
	l := newLimiter(b, newClient(b, s.Addr()), WithMaxConcurrency(math.MaxInt32), WithLogger(discard),
		WithKeyPrefix(uniquePrefix(b)), WithHoldTTL(time.Minute))
	admin := newClient(b, s.Addr())
	calls0, usec0 := evalshaStats(b, admin)
	shard := 0
	for b.Loop() {
		if err := l.WaitBucket(context.Background(), shard); err != nil {
			b.Fatal(err)
		}
		shard++
	}
	calls1, usec1 := evalshaStats(b, admin)
	if calls1 > calls0 {
		b.ReportMetric(float64(usec1-usec0)/float64(calls1-calls0), "script_server_us")
	}
}

// evalshaStats reads EVALSHA's calls and total µs from INFO commandstats.
func evalshaStats(b *testing.B, c *redis.Client) (calls, usec int64) {
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:"); ok {
			for _, kv := range strings.Split(rest, ",") {
				k, v, _ := strings.Cut(kv, "=")
				n, _ := strconv.ParseInt(v, 10, 64)
				switch k {
				case "calls":
					calls = n
				case "usec":
					usec = n
				}
			}
		}
	}
	return calls, usec
}

// BenchmarkWakeLatency: two limiters alternate on one bucket, so a waiter is
// always queued when the holder unlocks. Reports, on the Redis clock, how late
// each grant comes after the earliest allowed instant (unlock + window +
// margin): notification, timer and the grant's round trip.
func BenchmarkWakeLatency(b *testing.B) {
	s := redistest.Start(b)
	prefix := uniquePrefix(b)
	opts := []ConfigOpt{WithWindow(2 * time.Millisecond), WithMargin(0), WithKeyPrefix(prefix),
		WithGrantLog(true), WithLogger(discard), WithPollInterval(time.Second), WithTicketTTL(5 * time.Second)}
	ls := []*Limiter{newLimiter(b, newClient(b, s.Addr()), opts...), newLimiter(b, newClient(b, s.Addr()), opts...)}
	n := b.N
	var wg sync.WaitGroup
	b.ResetTimer()
	for i, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range (n + 1 - i) / 2 {
				if err := l.WaitBucket(context.Background(), 0); err != nil {
					b.Error(err)
					return
				}
				l.UnlockBucket(0)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	cooldown := (2 * time.Millisecond).Microseconds()
	var late []float64
	var unlockAt int64
	for _, e := range mustLog(b, ls[0]) {
		switch e.Event {
		case "unlock":
			unlockAt = e.Micros
		case "grant":
			if unlockAt > 0 {
				late = append(late, float64(e.Micros-unlockAt-cooldown))
			}
		}
	}
	if len(late) > 0 {
		slices.Sort(late)
		b.ReportMetric(mean(late), "wake_late_us")
		b.ReportMetric(late[len(late)*99/100], "p99_wake_late_us")
	}
}

func mean(xs []float64) float64 {
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum / float64(max(len(xs), 1))
}
