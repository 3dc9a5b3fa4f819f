package redislimiter

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/redistest"
)

// TestPropertyMultiProcess: three OS processes (this binary re-run as a
// helper) and two in-process limiters run many goroutines taking permits for
// random shards with random deadlines (many cancel while queued). Every grant,
// unlock and revoke is logged by the scripts with Redis server time, and the
// whole history must satisfy: one holder per bucket, unlock -> next grant >=
// window + margin, FIFO per bucket, at most max_concurrency per window.
func TestPropertyMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process property test")
	}
	s := redistest.Start(t)
	prefix := uniquePrefix(t)
	const mc, load = 4, 1500 * time.Millisecond
	// A holder killed with SIGKILL: its bucket stays blocked for HoldTTL.
	holder, held := startHelper(t, helperConfig{mode: "hold", addr: s.Addr(), prefix: prefix, mc: mc, shard: 3})
	expectLine(t, held, "HELD", 20*time.Second)
	if err := holder.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	stopKiller := killPubSubEvery(t, s.Addr(), 50*time.Millisecond)
	var helpers []<-chan string
	for i := range 3 {
		_, lines := startHelper(t, helperConfig{mode: "load", addr: s.Addr(), prefix: prefix, mc: mc,
			workers: 6, duration: load, seed: uint64(i + 1)})
		helpers = append(helpers, lines)
	}
	var ls []*Limiter
	for range 2 {
		ls = append(ls, newLimiter(t, newClient(t, s.Addr()), testOpts(prefix, mc)...))
	}
	var wg sync.WaitGroup
	fails := make([]int, len(ls))
	for i, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fails[i] = runLoad(l, 6, load, uint64(100+i))
		}()
	}
	wg.Wait()
	stopKiller()
	for i, lines := range helpers {
		if line := expectLine(t, lines, "DONE", 30*time.Second); line != "DONE 0" {
			t.Errorf("helper %d: %s (non-ctx WaitBucket failures)", i, line)
		}
	}
	for i, n := range fails {
		if n != 0 {
			t.Errorf("in-process limiter %d: %d non-ctx WaitBucket failures", i, n)
		}
	}
	entries := mustLog(t, ls[0])
	grants := checkLog(t, entries, rulesOf(ls[0]))
	holders := map[string]bool{}
	for _, g := range grants {
		holders[g.Holder] = true
	}
	procs := 0
	for h := range holders {
		if strings.HasPrefix(h, "pid-") {
			procs++
		}
	}
	// Capacity is about load / (window+margin) per bucket; demand is far higher,
	// so most waits are cancelled and every process should still get grants.
	if len(grants) < 40 || procs < 3 {
		t.Fatalf("%d grants from %d helper processes: too little load to prove anything", len(grants), procs)
	}
	t.Logf("%d grants, %d unlocks, %d revokes, holders %d", len(grants), countEvents(entries, "unlock"),
		countEvents(entries, "revoke"), len(holders))
}

// killPubSubEvery kills every pub/sub connection of the server each period
// until the returned stop is called; notifications are lost meanwhile.
func killPubSubEvery(t *testing.T, addr string, period time.Duration) (stop func()) {
	admin := newClient(t, addr)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				_ = admin.ClientKillByFilter(context.Background(), "TYPE", "pubsub").Err()
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { close(done); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}
