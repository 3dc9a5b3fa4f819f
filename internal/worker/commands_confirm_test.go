package worker

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/faultproxy"
	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/pkg/fleet"
	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// sendIntoBlackHole starts w1 with one shard whose first connection goes
// through a proxy, black-holes the proxy and queues a command: w1 writes it
// (the socket takes it) and records it as sent, and the fake never reads it;
// the command stays queued, in flight. deadline is the command's (zero: none);
// id is its command ID.
func sendIntoBlackHole(t *testing.T, deadline time.Time) (h *fleetHarness, p *faultproxy.Proxy, w1 *running, id string) {
	t.Helper()
	h = newHarness(t, 1)
	p, gatewayURL := gatewayProxy(t, h)
	cfg := h.config("w1", 1)
	cfg.GatewayURL = gatewayURL
	w1 = h.start(cfg)
	eventually(t, "w1 READY", 20*time.Second, func() bool { return readyShards(w1) == 1 })

	p.Blackhole()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := fleet.NewClient(h.redis.Client(t), testPrefix)
	queued, err := client.Send(ctx, fleet.ToShard(0, 1), fleet.Command{Op: gateway.OpPresenceUpdate, Deadline: deadline,
		D: json.RawMessage(`{"status":"online","activities":[{"name":"lost-once","type":0}],"since":null,"afk":false}`)})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := client.WaitOutcome(ctx, queued[0].ID); err != nil || out.State != fleet.StateSent {
		t.Fatalf("outcome %+v, %v; want sent (written on the connection)", out, err)
	}
	if n := queueLen(t, h); n != 1 {
		t.Fatalf("the queue holds %d commands, want the one in flight until Discord confirms it", n)
	}
	return h, p, w1, queued[0].ID
}

// queueLen is the length of shard 0/1's queue.
func queueLen(t *testing.T, h *fleetHarness) int64 {
	t.Helper()
	queue := keyspace.NewKeys(testPrefix).Commands(keyspace.ShardKey{ID: 0, Count: 1})
	n, err := h.redis.Client(t).XLen(context.Background(), queue).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// lostOnce lists the sessions on which the fake got sendIntoBlackHole's command.
func lostOnce(h *fleetHarness) []string {
	var got []string
	for _, c := range h.fake.Commands() {
		if strings.Contains(string(c.D), "lost-once") {
			got = append(got, c.SessionID)
		}
	}
	return got
}

// TestCommandLostWithItsConnectionIsSentAgain: the connection that took the
// command is reset with the command still held by the black hole. The
// worker sees that Discord never confirmed it and sends it again once the
// shard has RESUMEd, so Discord gets it, once; confirmed, it leaves the
// queue (it was never claimed a second time meanwhile: once in all).
func TestCommandLostWithItsConnectionIsSentAgain(t *testing.T) {
	h, p, w1, _ := sendIntoBlackHole(t, time.Time{})
	p.Reset() // the held command goes with the connection
	p.Heal()
	eventually(t, "Discord to get the command", 20*time.Second, func() bool { return len(lostOnce(h)) > 0 })
	eventually(t, "the shard READY again", 20*time.Second, func() bool { return readyShards(w1) == 1 })
	if n := len(lostOnce(h)); n != 1 {
		t.Fatalf("Discord got the command %d times, want 1", n)
	}
	if st := h.fake.Stats(); st.Resumes == 0 {
		t.Fatalf("fake stats %+v: the shard never RESUMEd, the test proved nothing", st)
	}
	eventually(t, "the confirmed command to leave the queue", 20*time.Second, func() bool { return queueLen(t, h) == 0 })
	if n := len(lostOnce(h)); n != 1 {
		t.Fatalf("Discord got the command %d times, want 1", n)
	}
}

// handOffDisconnected drops w1's connection, holding the command, keeps the
// shard from coming back (the fake answers no RESUME) and stops w1: the
// unconfirmed command must stay queued for the next owner.
func handOffDisconnected(t *testing.T, h *fleetHarness, p *faultproxy.Proxy, w1 *running) {
	t.Helper()
	h.fake.SetWithholdReady(true)
	p.Reset()
	p.Heal()
	eventually(t, "w1's shard to lose its connection", 10*time.Second, func() bool { return readyShards(w1) == 0 })
	w1.stop(t)
	if n := queueLen(t, h); n != 1 {
		t.Fatalf("after w1's handoff the queue holds %d commands, want the unconfirmed one", n)
	}
	h.fake.SetWithholdReady(false)
}

// TestCommandLostWithItsConnectionStaysQueuedAtHandoff: as above, but the
// shard cannot come back on this owner (the fake answers no RESUME) before
// it hands the shard off: the unconfirmed command stays queued, and the next
// owner sends it.
func TestCommandLostWithItsConnectionStaysQueuedAtHandoff(t *testing.T) {
	h, p, w1, _ := sendIntoBlackHole(t, time.Time{})
	handOffDisconnected(t, h, p, w1)
	h.start(h.config("w2", 1))
	eventually(t, "Discord to get the command", 20*time.Second, func() bool { return len(lostOnce(h)) > 0 })
	if n := len(lostOnce(h)); n != 1 {
		t.Fatalf("Discord got the command %d times, want 1", n)
	}
}

// TestCommandInFlightPastItsDeadlineKeepsItsOutcome: as above, but the
// command's deadline passes before the next owner claims it: it is not sent
// again, leaves the queue, and keeps its `sent` outcome (Discord may have
// read it), rather than being reported expired.
func TestCommandInFlightPastItsDeadlineKeepsItsOutcome(t *testing.T) {
	deadline := time.Now().Add(3 * time.Second)
	h, p, w1, id := sendIntoBlackHole(t, deadline)
	handOffDisconnected(t, h, p, w1)
	eventually(t, "the command's deadline to pass", 10*time.Second, func() bool { return time.Now().After(deadline) })
	w2 := h.start(h.config("w2", 1))
	eventually(t, "w2 READY", 20*time.Second, func() bool { return readyShards(w2) == 1 })
	eventually(t, "w2 to take the command off the queue", 20*time.Second, func() bool { return queueLen(t, h) == 0 })
	if n := len(lostOnce(h)); n != 0 {
		t.Fatalf("Discord got the command %d times past its deadline, want 0", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := fleet.NewClient(h.redis.Client(t), testPrefix).Outcome(ctx, id)
	if err != nil || out.State != fleet.StateSent {
		t.Fatalf("outcome %+v, %v; want it still sent", out, err)
	}
}
