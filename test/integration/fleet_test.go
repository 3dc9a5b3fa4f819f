package integration

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	shards = 6
	load   = 150 // events per second from the fake
)

// coldStart starts the fake and three workers and waits until every shard is READY.
func coldStart(t *testing.T) (*fleet, map[int]string) {
	f := newFleet(t, shards, load)
	for _, id := range []string{"w1", "w2", "w3"} {
		f.startWorker(id)
	}
	owners := f.waitAllReady("cold start: every shard READY")
	return f, owners
}

func TestColdStartEveryShardReadyOnce(t *testing.T) {
	f, owners := coldStart(t)
	perWorker := map[string]int{}
	for _, w := range owners {
		perWorker[w]++
	}
	for _, id := range []string{"w1", "w2", "w3"} {
		if perWorker[id] != shards/3 {
			t.Errorf("worker %s runs %d shards, want %d (balanced): %v", id, perWorker[id], shards/3, owners)
		}
	}
	identified := map[int]int{}
	for _, rec := range f.fake.identifies(t) {
		identified[rec.ShardID]++
	}
	for s := 0; s < shards; s++ {
		if identified[s] != 1 {
			t.Errorf("shard %d identified %d times, want exactly once", s, identified[s])
		}
	}
	if st := f.checkInvariants(); st.Identifies != shards {
		t.Errorf("identifies = %d, want %d", st.Identifies, shards)
	}
	f.checkStream()
	f.checkNoSecret()
}

// failover kills (or stops) the worker owning the most shards and checks that
// the others RESUME them without an IDENTIFY and that the stream is exact.
func failover(t *testing.T, sig syscall.Signal) {
	f, owners := coldStart(t)
	victim := owners[0]
	moved := 0
	for _, w := range owners {
		if w == victim {
			moved++
		}
	}
	before := f.checkInvariants()
	p := f.workers[victim]
	p.signal(sig)
	if sig == syscall.SIGTERM {
		if err := p.wait(t, 10*time.Second); err != nil {
			t.Errorf("worker %s after SIGTERM: %v (want exit 0)", victim, err)
		}
		if n := linesWith(p, "shard handed off"); n != moved {
			t.Errorf("worker %s handed off %d shards, want %d", victim, n, moved)
		}
	}
	survivors := []string{}
	for _, id := range []string{"w1", "w2", "w3"} {
		if id != victim {
			survivors = append(survivors, id)
		}
	}
	f.waitAllReady("the victim's shards READY on the survivors", survivors...)
	after := f.checkInvariants()
	if after.Identifies != before.Identifies {
		t.Errorf("identifies went %d -> %d: shards were re-identified instead of resumed", before.Identifies, after.Identifies)
	}
	if got := after.Resumes - before.Resumes; got < moved || after.FailedResumes != 0 {
		t.Errorf("resumes +%d (failed %d), want at least %d successful", got, after.FailedResumes, moved)
	}
	f.checkStream()
	f.checkNoSecret()
}

func TestKill9FailoverResumesWithoutLoss(t *testing.T) { failover(t, syscall.SIGKILL) }

func TestSIGTERMHandsOffWithoutLoss(t *testing.T) { failover(t, syscall.SIGTERM) }

func TestFourthWorkerJoinsAndTakesOnlyItsShare(t *testing.T) {
	f, before := coldStart(t)
	statsBefore := f.checkInvariants()
	f.startWorker("w4")
	var after map[int]string
	poll(t, "w4 to take its share", 30*time.Second, func() bool {
		after = f.waitAllReady("every shard READY after the join")
		perWorker := map[string]int{}
		for _, w := range after {
			perWorker[w]++
		}
		// 6 shards over 4 workers: at most 2 each, w4 at least 1.
		for _, n := range perWorker {
			if n > 2 {
				return false
			}
		}
		return perWorker["w4"] >= 1
	})
	moved := 0
	for s, w := range after {
		if before[s] != w {
			moved++
			if w != "w4" {
				t.Errorf("shard %d moved %s -> %s: only moves to the new worker are expected", s, before[s], w)
			}
		}
	}
	statsAfter := f.checkInvariants()
	if statsAfter.Identifies != statsBefore.Identifies {
		t.Errorf("identifies went %d -> %d during a rebalance", statsBefore.Identifies, statsAfter.Identifies)
	}
	if got := statsAfter.Resumes - statsBefore.Resumes; got != moved {
		t.Errorf("%d resumes for %d moved shards", got, moved)
	}
	f.checkStream()
}

func TestInvalidTokenStopsEveryWorkerWithoutLoop(t *testing.T) {
	f := newFleet(t, shards, 0)
	f.token = "wrong-token"
	for _, id := range []string{"w1", "w2", "w3"} {
		f.startWorker(id)
	}
	poll(t, "every shard reported fatal", 30*time.Second, func() bool {
		_, st := f.owners()
		fatal := 0
		for _, w := range st {
			for _, s := range w.Shards {
				if s.Status == "fatal" && strings.Contains(s.Error, "4004") {
					fatal++
				}
			}
		}
		return fatal == shards
	})
	for id, p := range f.workers {
		if linesWith(p, "4004") == 0 {
			t.Errorf("worker %s did not report 4004", id)
		}
	}
	first := f.fake.stats(t)
	// A quiet period several lease TTLs long: nothing may retry in it.
	time.Sleep(3 * leaseTTL)
	second := f.checkInvariants()
	if second.Identifies != first.Identifies || len(f.fake.identifies(t)) > shards {
		t.Errorf("identifies %d -> %d (records %d): a loop on a bad token", first.Identifies, second.Identifies,
			len(f.fake.identifies(t)))
	}
	if second.Connections != 0 {
		t.Errorf("%d connections still open after 4004", second.Connections)
	}
	f.checkNoSecret()
}
