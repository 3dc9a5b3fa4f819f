package lease

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/redistest"
)

// benchConfig keeps DefaultConfig's ratios at a tenth of its timings, so a
// benchmark run takes seconds: TTL 1.5 s, renew every 200 ms, deadline 1 s.
func benchConfig() Config {
	c := testConfig("")
	c.TTL, c.RenewInterval, c.RenewDeadline = 1500*time.Millisecond, 200*time.Millisecond, time.Second
	c.TickInterval, c.TickJitter = 100*time.Millisecond, 25*time.Millisecond
	c.JoinGrace, c.DataLossGrace = 0, 2500*time.Millisecond
	c.MovesPerTick = 64
	return c
}

// totalCommands reads total_commands_processed from INFO stats.
func totalCommands(b testing.TB, c *redis.Client) int64 {
	b.Helper()
	info, err := c.Info(context.Background(), "stats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// evalshaCalls is how many EVALSHAs srv ran (INFO commandstats).
func evalshaCalls(b testing.TB, srv *redistest.Server) int64 {
	b.Helper()
	calls, err := srv.CommandCalls(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return calls["evalsha"]
}

// startFleet starts n runners over a layout of shards and waits until every
// shard is run.
func startFleet(t testing.TB, srv *redistest.Server, n, shards int, cfg Config) (*world, []*runner) {
	direct := newClient(t, srv.Addr())
	w := newWorld()
	var rs []*runner
	for range n {
		rs = append(rs, startRunner(t, newClient(t, srv.Addr()), cfg, w))
	}
	endGrace(t, direct, "")
	if _, err := rs[0].s.SetLayoutIfAbsent(testCtx(t), shards); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(w.owners()) != shards {
		if time.Now().After(deadline) {
			for _, r := range rs {
				t.Logf("runner %s: %d leases, %d members seen, err %v", r.s.ID(), len(r.s.Leases()), len(r.s.Members()), r.s.Err())
			}
			t.Fatalf("the fleet runs %d of %d shards after 30s", len(w.owners()), shards)
		}
		time.Sleep(5 * time.Millisecond) // polling against a deadline
	}
	// Let the assignment settle (moves after every member counts).
	want := Assign(shardsOf(shards), ids(rs))
	eventually(t, 30*time.Second, "the fleet converges", func() bool { return fmt.Sprint(w.owners()) == fmt.Sprint(want) })
	return w, rs
}

func ids(rs []*runner) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.s.ID())
	}
	return out
}

// BenchmarkSteadyStateCommands measures the Redis load of a settled fleet of
// 4 members: commands processed per second (INFO stats, which counts the
// commands a script runs, plus the script call) and script round trips
// (EVALSHA calls). Both should be independent of the shard count.
//
//	go test -run '^$' -bench SteadyState -benchtime 1x ./internal/lease/
func BenchmarkSteadyStateCommands(b *testing.B) {
	for _, shards := range []int{100, 1000} {
		b.Run(fmt.Sprintf("shards=%d", shards), func(b *testing.B) {
			srv := redistest.Start(b)
			stats := newClient(b, srv.Addr())
			cfg := benchConfig()
			const members = 4
			startFleet(b, srv, members, shards, cfg)
			window := 3 * time.Second
			for b.Loop() {
				// EVALSHA counts outside the command counts: CommandCalls'
				// own connection (HELLO, INFO...) stays out of cmds.
				e0 := evalshaCalls(b, srv)
				c0 := totalCommands(b, stats)
				start := time.Now()
				time.Sleep(window) // the measurement window itself
				el := time.Since(start)
				c1 := totalCommands(b, stats)
				e1 := evalshaCalls(b, srv)
				renews := float64(members) * el.Seconds() / cfg.RenewInterval.Seconds()
				cmds := float64(c1 - c0 - 1) // minus our first INFO (the second counts after its reply)
				b.ReportMetric(cmds/el.Seconds(), "cmds/s")
				b.ReportMetric(float64(e1-e0)/el.Seconds(), "scripts/s")
				b.ReportMetric(float64(e1-e0)/renews, "scripts/member/renew")
				b.ReportMetric(cmds/renews, "cmds/member/renew")
			}
		})
	}
}

// BenchmarkTakeover measures the time from a member's death (Orphan: no
// release, no more renews) to all of its shards being run elsewhere, as a
// ratio to the TTL (aim: <= 1.2). 1000 shards over 4 members.
//
//	go test -run '^$' -bench Takeover -benchtime 5x ./internal/lease/
func BenchmarkTakeover(b *testing.B) {
	cfg := benchConfig()
	const shards, members = 1000, 4
	var worst, sum float64
	n := 0
	for b.Loop() {
		b.StopTimer()
		srv := redistest.Start(b)
		w, rs := startFleet(b, srv, members, shards, cfg)
		victim := rs[len(rs)-1]
		var theirs []ShardKey
		for k, o := range w.owners() {
			if o == victim.s.ID() {
				theirs = append(theirs, k)
			}
		}
		b.StartTimer()
		died := time.Now()
		victim.stop()
		victim.s.Orphan()
		eventually(b, 10*cfg.TTL, "the victim's shards run elsewhere", func() bool {
			o := w.owners()
			for _, k := range theirs {
				if owner, ok := o[k]; !ok || owner == victim.s.ID() {
					return false
				}
			}
			return true
		})
		ratio := float64(time.Since(died)) / float64(cfg.TTL)
		b.StopTimer()
		worst, sum, n = max(worst, ratio), sum+ratio, n+1
		for _, r := range rs {
			r.stop()
		}
		b.StartTimer()
	}
	b.ReportMetric(sum/float64(n), "mean_takeover/TTL")
	b.ReportMetric(worst, "max_takeover/TTL")
}

// BenchmarkJoinMoves measures a planned rebalance: a fifth member joins a
// settled fleet of 4 over 1000 shards. It reports the shards moved (Assign's
// ideal is about 1000/5 = 200), the time until the fleet matches the new
// assignment, and the longest a moving shard was unowned (revoke to acquire).
//
//	go test -run '^$' -bench JoinMoves -benchtime 3x ./internal/lease/
func BenchmarkJoinMoves(b *testing.B) {
	cfg := benchConfig()
	const shards = 1000
	var moves, gap, converge float64
	n := 0
	for b.Loop() {
		b.StopTimer()
		srv := redistest.Start(b)
		w, rs := startFleet(b, srv, 4, shards, cfg)
		w.mu.Lock()
		w.moves, w.maxGap = 0, 0
		w.mu.Unlock()
		b.StartTimer()
		start := time.Now()
		r5 := startRunner(b, newClient(b, srv.Addr()), cfg, w)
		want := Assign(shardsOf(shards), append(ids(rs), r5.s.ID()))
		eventually(b, 30*time.Second, "the fleet converges after the join", func() bool {
			return fmt.Sprint(w.owners()) == fmt.Sprint(want)
		})
		b.StopTimer()
		converge += time.Since(start).Seconds()
		w.mu.Lock()
		moves += float64(w.moves)
		gap += w.maxGap.Seconds()
		w.mu.Unlock()
		n++
		for _, r := range append(rs, r5) {
			r.stop()
		}
		b.StartTimer()
	}
	b.ReportMetric(moves/float64(n), "moves/join")
	b.ReportMetric(converge/float64(n), "converge_s")
	b.ReportMetric(gap/float64(n)*1000, "max_unowned_ms")
}
