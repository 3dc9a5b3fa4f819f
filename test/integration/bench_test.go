package integration

import (
	"syscall"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// Benchmarks of the fleet's moves, one scenario per iteration (each builds
// its own fleet: 2 worker processes, 4 shards, 150 events/s). Run with e.g.
//
//	go test -run '^$' -bench . -benchtime 3x ./test/integration
//
// Figures come from the fake's records (one clock, the fake's process).

const benchShards = 4

// moveShards starts a 2-worker fleet, stops the owner of shard 0 with sig and
// returns, for each shard it owned, the close time seen by the fake (from the
// client, for SIGTERM), the RESUME time on the new owner, and the signal time.
func moveShards(b *testing.B, sig syscall.Signal) (closed, resumed map[int]time.Time, signalled time.Time) {
	f := newFleet(b, benchShards, load)
	f.startWorker("b1")
	f.startWorker("b2")
	owners := f.waitAllReady("every shard READY")
	victim := owners[0]
	moved := map[int]bool{}
	for s, w := range owners {
		if w == victim {
			moved[s] = true
		}
	}
	other := "b1"
	if victim == "b1" {
		other = "b2"
	}
	signalled = time.Now()
	f.workers[victim].signal(sig)
	f.waitAllReady("shards READY on the survivor", other)
	closed, resumed = map[int]time.Time{}, map[int]time.Time{}
	for _, c := range f.fake.closes(b) {
		if moved[c.ShardID] && c.FromClient && c.Code == gateway.CloseCodeHandoff && c.Time.After(signalled) {
			closed[c.ShardID] = c.Time
		}
	}
	for _, r := range f.fake.resumes(b) {
		if moved[r.ShardID] && r.OK && r.Time.After(signalled) {
			resumed[r.ShardID] = r.Time
		}
	}
	if len(resumed) != len(moved) {
		b.Fatalf("%d of %d moved shards resumed", len(resumed), len(moved))
	}
	if st := f.checkInvariants(); st.Identifies != benchShards {
		b.Fatalf("identifies = %d, want %d", st.Identifies, benchShards)
	}
	return closed, resumed, signalled
}

// BenchmarkGracefulHandoffGap: SIGTERM a worker; per moved shard, the time
// from its handoff close (4900) to RESUMED on the new owner. It includes the
// lease release and the new owner's next reconcile tick.
func BenchmarkGracefulHandoffGap(b *testing.B) {
	var total, worst time.Duration
	n := 0
	for range b.N {
		closed, resumed, _ := moveShards(b, syscall.SIGTERM)
		for s, r := range resumed {
			c, ok := closed[s]
			if !ok {
				b.Fatalf("shard %d: no handoff close recorded", s)
			}
			gap := r.Sub(c)
			total += gap
			worst = max(worst, gap)
			n++
		}
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(n), "ms/shard-gap")
	b.ReportMetric(float64(worst.Milliseconds()), "ms-worst-gap")
}

// BenchmarkCrashFailover: kill -9 a worker; the time from the kill to the
// last of its shards RESUMED elsewhere, as a ratio to the lease TTL.
func BenchmarkCrashFailover(b *testing.B) {
	var total, worst time.Duration
	for range b.N {
		_, resumed, killed := moveShards(b, syscall.SIGKILL)
		var last time.Duration
		for _, r := range resumed {
			last = max(last, r.Sub(killed))
		}
		total += last
		worst = max(worst, last)
	}
	mean := total / time.Duration(b.N)
	b.ReportMetric(float64(mean.Milliseconds()), "ms-to-all-resumed")
	b.ReportMetric(float64(mean)/float64(leaseTTL), "x-TTL")
	b.ReportMetric(float64(worst)/float64(leaseTTL), "x-TTL-worst")
}
