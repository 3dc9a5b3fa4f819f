package worker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
)

// loopsRunning counts the shards of r whose command loop has a goroutine.
func loopsRunning(r *running) int {
	r.w.mu.RLock()
	defer r.w.mu.RUnlock()
	n := 0
	for _, run := range r.w.shards {
		run.cmd.mu.Lock()
		if run.cmd.running {
			n++
		}
		run.cmd.mu.Unlock()
	}
	return n
}

// TestIdleShardsCostNoCommandRounds: once the first rounds drained the
// queues, idle shards hold no command goroutine and claim nothing: no
// XRANGE (the claim's read) in the window, where a per-shard poll claimed
// once a second per shard. The worker's sweep looks at every queue in one
// pipeline per CommandSweep.
func TestIdleShardsCostNoCommandRounds(t *testing.T) {
	const shards = 24
	const window = 3 * time.Second
	h := newHarness(t, shards)
	cfg := h.config("w1", shards)
	cfg.CommandSweep = time.Second
	w := h.start(cfg)
	eventually(t, "every shard READY", 60*time.Second, func() bool { return readyShards(w) == shards })
	eventually(t, "every command loop ended", 10*time.Second, func() bool { return loopsRunning(w) == 0 })

	ctx := context.Background()
	before, err := h.redis.CommandCalls(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(window) // not a condition: the window the idle cost is measured over
	after, err := h.redis.CommandCalls(ctx)
	if err != nil {
		t.Fatal(err)
	}
	delta := func(cmd string) int64 { return after[cmd] - before[cmd] }
	t.Logf("in %v with %d idle shards: xrange %d, xlen %d, evalsha %d", window, shards,
		delta("xrange"), delta("xlen"), delta("evalsha"))
	if n := delta("xrange"); n != 0 {
		t.Errorf("idle shards claimed %d times in %v, want 0 (a per-shard poll claims %d)", n, window,
			int64(shards)*int64(window/time.Second))
	}
	// The sweeps: one XLEN per shard each CommandSweep, in one pipeline.
	if n, most := delta("xlen"), int64(shards)*int64(window/cfg.CommandSweep+1); n > most {
		t.Errorf("%d XLEN in %v, want at most %d (one per shard per sweep)", n, window, most)
	}
	if n := loopsRunning(w); n != 0 {
		t.Errorf("%d command loops running on idle shards, want 0", n)
	}
}

// queueWithoutWakeUp queues a presence update for shard 0/1 as a sender
// whose PUBLISH was lost would: XADD only, with marker as its ID and in d.
func queueWithoutWakeUp(t *testing.T, h *fleetHarness, marker string) {
	t.Helper()
	queue := keyspace.NewKeys(testPrefix).Commands(keyspace.ShardKey{ID: 0, Count: 1})
	err := h.redis.Client(t).XAdd(context.Background(), &redis.XAddArgs{Stream: queue, Values: []any{
		"id", marker, "op", "3", "d",
		`{"status":"online","activities":[{"name":"` + marker + `","type":0}],"since":null,"afk":false}`}}).Err()
	if err != nil {
		t.Fatal(err)
	}
}

// sentTimes counts the commands the fake got whose d holds marker.
func sentTimes(h *fleetHarness, marker string) int {
	n := 0
	for _, c := range h.fake.Commands() {
		if strings.Contains(string(c.D), marker) {
			n++
		}
	}
	return n
}

// TestCommandWithoutWakeUpIsSentBySweep: a command queued without its
// pub/sub message is sent at the worker's next sweep, once.
func TestCommandWithoutWakeUpIsSentBySweep(t *testing.T) {
	h := newHarness(t, 1)
	cfg := h.config("w1", 1)
	cfg.CommandSweep = time.Second
	w := h.start(cfg)
	eventually(t, "w1 READY", 20*time.Second, func() bool { return readyShards(w) == 1 })
	eventually(t, "the command loop ended", 10*time.Second, func() bool { return loopsRunning(w) == 0 })
	queueWithoutWakeUp(t, h, "swept")
	// A sweep, the send and the fake's read; slack for a loaded machine.
	eventually(t, "the fake to get the command", 5*cfg.CommandSweep, func() bool { return sentTimes(h, "swept") > 0 })
	eventually(t, "the command confirmed and off the queue", 10*time.Second, func() bool { return queueLen(t, h) == 0 })
	if n := sentTimes(h, "swept"); n != 1 {
		t.Errorf("the fake got the command %d times, want 1", n)
	}
}

// TestCommandWakeUpLostWhileUnsubscribedIsSentAtResubscribe: a command
// queued without its message before the worker's subscription drops (its
// message lost, as while unsubscribed) is sent once go-redis has
// subscribed again, not only at the next sweep.
func TestCommandWakeUpLostWhileUnsubscribedIsSentAtResubscribe(t *testing.T) {
	h := newHarness(t, 1)
	cfg := h.config("w1", 1)
	cfg.CommandSweep = 10 * time.Minute // never in this test
	w := h.start(cfg)
	eventually(t, "w1 READY", 20*time.Second, func() bool { return readyShards(w) == 1 })
	eventually(t, "the command loop ended", 10*time.Second, func() bool { return loopsRunning(w) == 0 })
	queueWithoutWakeUp(t, h, "resubscribed")
	if _, err := h.redis.Do(context.Background(), "CLIENT", "KILL", "TYPE", "pubsub"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the fake to get the command", 20*time.Second, func() bool { return sentTimes(h, "resubscribed") > 0 })
	eventually(t, "the command confirmed and off the queue", 10*time.Second, func() bool { return queueLen(t, h) == 0 })
	if n := sentTimes(h, "resubscribed"); n != 1 {
		t.Errorf("the fake got the command %d times, want 1", n)
	}
}
