package worker

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/testutil"
)

// fleetGoroutines counts the goroutines that are running code of
// internal/worker or internal/eventsink (a frame of theirs on the stack, not
// only in the "created by" line), and of those, the ones in a function that
// runs per shard.
func fleetGoroutines() (all, perShard int) {
	for g := range bytes.SplitSeq(testutil.AllStacks(), []byte("\n\n")) {
		var frames strings.Builder
		for line := range strings.SplitSeq(string(g), "\n") {
			if !strings.HasPrefix(line, "created by ") {
				frames.WriteString(line + "\n")
			}
		}
		f := frames.String()
		if !strings.Contains(f, "shardfleet/internal/worker.") && !strings.Contains(f, "shardfleet/internal/eventsink.") {
			continue
		}
		all++
		for _, fn := range []string{"(*Worker).runShard(", "(*Worker).takeSteps(", "(*Worker).runCommands(", "(*Writer).loop("} {
			if strings.Contains(f, fn) {
				perShard++
				break
			}
		}
	}
	return all, perShard
}

// TestIdleFleetShardsHoldNoGoroutine: once its shards are READY and have
// committed what they were sent, a fleet worker runs no goroutine per shard
// of its own (internal/worker) or of its event writers (internal/eventsink):
// only the gateway's read loops and the worker-wide loops are left. It then
// still hands the idle shards off (the lease's end starts their stop).
func TestIdleFleetShardsHoldNoGoroutine(t *testing.T) {
	const shards = 16
	h := newHarness(t, shards)
	w1 := h.start(h.config("w1", shards))
	eventually(t, "every shard READY", 60*time.Second, func() bool { return readyShards(w1) == shards })
	var all, perShard int
	eventually(t, "no per-shard goroutine of the worker's", 10*time.Second, func() bool {
		all, perShard = fleetGoroutines()
		return perShard == 0
	})
	t.Logf("%d idle shards: %d goroutines of internal/worker and internal/eventsink", shards, all)
	if all >= shards {
		t.Errorf("%d goroutines of internal/worker and internal/eventsink for %d idle shards: one per shard?", all, shards)
	}
	w2 := h.start(h.config("w2", shards))
	eventually(t, "the shards shared and READY", 60*time.Second, func() bool {
		return readyShards(w1, w2) == shards && len(w1.w.Status().Shards) < shards && len(w2.w.Status().Shards) > 0
	})
	if st := h.fake.Stats(); st.Resumes == 0 || st.FailedResumes != 0 || st.DuplicateSessions != 0 {
		t.Errorf("after handing idle shards off: %+v; want RESUMEs, none failed, no duplicate session", st)
	}
	h.checkStream(t)
}
