package integration

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/testutil"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// First start of a brand-new fleet with the default lease timings (15 s TTL,
// 2 s renew interval): 3 workers, 8 shards, max_concurrency 2, Discord's 5 s
// identify window (a shorter one leaves 0.1 x ideal below the probe's margin
// plus a loaded machine's start-up: the bound is about real timings). The
// fleet must IDENTIFY its first shard
// within one renew interval + 1 s of the first worker's start, and every
// shard within 1.1 x the pacing ideal + one renew interval (the fake answers
// an IDENTIFY with READY at once, so its IDENTIFY records time the READYs).
const (
	firstStartShards   = 8
	firstStartMC       = 2
	firstStartWindow   = 5 * time.Second
	firstStartMargin   = 250 * time.Millisecond // the default: the fake checks the bare 5 s window, and a loaded machine delays its reads
	firstStartRenew    = 2 * time.Second
	firstStartLeaseTTL = 15 * time.Second
)

func TestFirstStartIsPrompt(t *testing.T) {
	needBinaries(t)
	f := newFleetWithFake(t, firstStartShards, startFake(t, firstStartShards, 0,
		"-max-concurrency", "2", "-identify-window", firstStartWindow.String()))
	httpAddr := freeAddr(t) // w1's
	start := time.Now()
	for _, id := range []string{"w1", "w2", "w3"} {
		env := []string{"LEASE_TTL=" + firstStartLeaseTTL.String(), "LEASE_RENEW_INTERVAL=" + firstStartRenew.String(),
			"MAX_CONCURRENCY=2", "IDENTIFY_WINDOW=" + firstStartWindow.String(), "IDENTIFY_MARGIN=" + firstStartMargin.String()}
		if id == "w1" {
			env = append(env, "HTTP_ADDR="+httpAddr)
		}
		f.startWorkerWith(id, env...)
	}
	// While it waits the worker says so: /readyz is 503 with the reason, and
	// `worker status` names the data-loss probe with the time left (published
	// by the worker that created the fleet's epoch).
	var readyz, status string
	sawReadyz, sawStatus := false, false
	defer func() {
		if t.Failed() {
			t.Logf("last /readyz: %s\nlast worker status:\n%s", readyz, status)
		}
	}()
	poll(t, "/readyz and `worker status` to name the waits", 5*time.Second, func() bool {
		if readyz = getText("http://" + httpAddr + "/readyz"); strings.HasPrefix(readyz, "not ready: waiting: ") {
			sawReadyz = true
		}
		status, _ = runWorkerCmd(t, 10*time.Second, []string{"REDIS_URL=" + f.redis.URL(), "KEY_PREFIX=" + prefix}, "status")
		if testutil.HasLine(status, "waits: data-loss grace", "left") {
			sawStatus = true
		}
		return sawReadyz && sawStatus
	})
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

// A killed worker's last published shards show as stale in `worker status`,
// with how long ago it was last seen, until its status key expires.
func TestStatusMarksAKilledWorkerStale(t *testing.T) {
	f := newFleet(t, 2, 0)
	f.startWorker("w1")
	f.startWorker("w2")
	f.waitAllReady("every shard READY")
	f.workers["w2"].signal(syscall.SIGKILL)
	_ = f.workers["w2"].wait(t, 10*time.Second)
	var out string
	poll(t, "w2 shown stale", 10*time.Second, func() bool {
		out, _ = runWorkerCmd(t, 10*time.Second, []string{"REDIS_URL=" + f.redis.URL(), "KEY_PREFIX=" + prefix}, "status")
		return testutil.HasLine(out, "w2 ", "stale", "last seen")
	})
	if !strings.Contains(out, "(and 1 stale workers)") {
		t.Errorf("summary does not count the stale worker:\n%s", out)
	}
}

// getText GETs url and returns the body, or "" while the server is not up.
func getText(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
