package integration

import (
	"context"
	"encoding/json"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/faultproxy"
	"github.com/shardfleet/shardfleet/internal/keyspace"
	fleetclient "github.com/shardfleet/shardfleet/pkg/fleet"
)

// sentStillQueued counts the entries of shard's queue whose outcome is
// already `sent`: the commands in flight, written and not yet confirmed by
// Discord.
func sentStillQueued(t testing.TB, c *redis.Client, shard keyspace.ShardKey) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	keys := keyspace.NewKeys(prefix)
	msgs, err := c.XRange(ctx, keys.Commands(shard), "-", "+").Result()
	if err != nil {
		t.Fatalf("read the queue of %s: %v", shard, err)
	}
	n := 0
	for _, m := range msgs {
		id, _ := m.Values["id"].(string)
		b, err := c.Get(ctx, keys.CommandOutcome(shard, id)).Bytes()
		if err == redis.Nil {
			continue
		}
		var o fleetclient.Outcome
		if err != nil || json.Unmarshal(b, &o) != nil {
			t.Fatalf("outcome of queued command %s: %v (%q)", id, err, b)
		}
		if o.State == fleetclient.StateSent {
			n++
		}
	}
	return n
}

// gatewayThroughProxy puts a fault proxy in front of the fake's gateway and
// returns it with the GATEWAY_URL setting that goes through it.
func gatewayThroughProxy(t testing.TB, fk *fake) (*faultproxy.Proxy, string) {
	t.Helper()
	u, err := url.Parse(fk.gatewayURL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := faultproxy.New(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	u.Host = p.Addr()
	return p, "GATEWAY_URL=" + u.String()
}

// TestCommandsInFlightAtKillAreSentByNextOwner: the owner writes commands
// on a connection a black hole holds (the fake reads none), records them
// `sent`, and is killed -9 before Discord could confirm them; the connection
// then drops, taking them along. They stayed queued: the next owner sends
// every one, in order, once, and records its own send in their outcomes.
func TestCommandsInFlightAtKillAreSentByNextOwner(t *testing.T) {
	const n = 20
	shard := keyspace.ShardKey{ID: 0, Count: 1}
	needBinaries(t)
	// A 5 s heartbeat: w1 takes that long at least to call the black-holed
	// connection a zombie, so every command goes out on it first.
	f := newFleetWithFake(t, 1, startFake(t, 1, 20, "-send-limit", "120", "-send-window", sendWindow.String(),
		"-heartbeat-interval", "5s"))
	proxy, viaProxy := gatewayThroughProxy(t, f.fake)
	w1 := f.startWorker("w1", append(commandWorkerEnv, viaProxy)...)
	f.waitAllReady("the shard READY on w1")

	proxy.Blackhole()
	client := fleetclient.NewClient(f.client, prefix)
	ids := queueBurst(t, client, 1, n)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first := map[string]fleetclient.Outcome{}
	for _, id := range ids {
		o, err := client.WaitOutcome(ctx, id)
		if err != nil || o.State != fleetclient.StateSent {
			t.Fatalf("outcome of %s: %+v, %v; want sent (written into the black hole)", id, o, err)
		}
		first[id] = o
	}
	w1.signal(syscall.SIGKILL)
	_ = w1.wait(t, 10*time.Second) // killed: its exit status says so
	inFlight := sentStillQueued(t, f.client, shard)
	if inFlight != n {
		t.Fatalf("after the kill %d commands are queued as sent, want all %d in flight", inFlight, n)
	}
	proxy.Reset() // the held commands go with the connection
	proxy.Heal()
	if got := len(recordedBurst(f.fake.commands(t), 1).first[0]); got != 0 {
		t.Fatalf("the fake recorded %d commands through the black hole: the test proves nothing", got)
	}

	f.startWorker("w2", commandWorkerEnv...)
	poll(t, "the fake to record every command", 30*time.Second, func() bool {
		return len(recordedBurst(f.fake.commands(t), 1).first[0]) >= n
	})
	if repeats := checkBurst(t, recordedBurst(f.fake.commands(t), 1), 1, n); repeats > inFlight {
		t.Errorf("%d repeats, more than the %d commands in flight at the kill", repeats, inFlight)
	}
	poll(t, "the confirmed commands to leave the queue", 30*time.Second, func() bool {
		l, err := f.client.XLen(ctx, keyspace.NewKeys(prefix).Commands(shard)).Result()
		return err == nil && l == 0
	})
	for _, id := range ids {
		o, err := client.Outcome(ctx, id)
		if err != nil || o.State != fleetclient.StateSent || o.At <= first[id].At {
			t.Errorf("outcome of %s: %+v, %v; want sent, recorded again by w2 (after %d)", id, o, err, first[id].At)
		}
	}
}
