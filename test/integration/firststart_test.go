package integration

import (
	"slices"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// First start of a brand-new fleet with the default lease timings (15 s TTL,
// 2 s renew interval): 3 workers, 8 shards, max_concurrency 2, an identify
// window shortened from 5 s for time. The fleet must IDENTIFY its first shard
// within one renew interval + 1 s of the first worker's start, and every
// shard within 1.1 x the pacing ideal + one renew interval (the fake answers
// an IDENTIFY with READY at once, so its IDENTIFY records time the READYs).
const (
	firstStartShards   = 8
	firstStartMC       = 2
	firstStartWindow   = 4 * time.Second
	firstStartMargin   = 20 * time.Millisecond
	firstStartRenew    = 2 * time.Second
	firstStartLeaseTTL = 15 * time.Second
)

func TestFirstStartIsPrompt(t *testing.T) {
	needBinaries(t)
	f := newFleetWithFake(t, firstStartShards, startFake(t, firstStartShards, 0,
		"-max-concurrency", "2", "-identify-window", firstStartWindow.String()))
	start := time.Now()
	for _, id := range []string{"w1", "w2", "w3"} {
		f.startWorkerWith(id, "LEASE_TTL="+firstStartLeaseTTL.String(), "LEASE_RENEW_INTERVAL="+firstStartRenew.String(),
			"MAX_CONCURRENCY=2", "IDENTIFY_WINDOW="+firstStartWindow.String(), "IDENTIFY_MARGIN="+firstStartMargin.String())
	}
	f.waitAllReady("first start: every shard READY")
	ids := f.fake.identifies(t)
	first, last := firstStartSpan(t, ids)
	if got, bound := first.Sub(start), firstStartRenew+time.Second; got > bound {
		t.Errorf("first IDENTIFY %v after the first worker's start, want <= %v (renew interval + 1 s)", got, bound)
	}
	waves := (firstStartShards+firstStartMC-1)/firstStartMC - 1
	ideal := time.Duration(waves) * (firstStartWindow + firstStartMargin)
	bound := time.Duration(1.1*float64(ideal)) + firstStartRenew
	if got := last.Sub(start); got > bound {
		t.Errorf("every shard READY %v after the start, want <= %v (1.1 x ideal %v + renew interval)", got, bound, ideal)
	}
	t.Logf("first IDENTIFY after %v, all READY after %v; ideal %v", first.Sub(start), last.Sub(start), ideal)
	f.checkInvariants()
}

// firstStartSpan checks that every shard was identified exactly once and
// returns the first and the last IDENTIFY's times.
func firstStartSpan(t *testing.T, ids []gatewaytest.IdentifyRecord) (first, last time.Time) {
	t.Helper()
	per := map[int]int{}
	times := make([]time.Time, 0, len(ids))
	for _, r := range ids {
		per[r.ShardID]++
		times = append(times, r.Time)
	}
	for s := range firstStartShards {
		if per[s] != 1 {
			t.Errorf("shard %d identified %d times, want once", s, per[s])
		}
	}
	if len(times) == 0 {
		t.Fatal("no IDENTIFY recorded")
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	return times[0], times[len(times)-1]
}
