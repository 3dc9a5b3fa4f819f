package redistest

import (
	"context"
	"testing"
)

// TestSentinelFailover: a planned failover moves the master to the replica
// and keeps what was replicated. (Sentinel turns the old master into a
// replica only 8-18 s later, when it next sees it claim the master role: not
// waited for here.)
func TestSentinelFailover(t *testing.T) {
	d := StartSentinel(t, 1)
	c := d.Client(t)
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1: %d replicas acknowledged, %v", n, err)
	}
	old := d.Failover(t)
	now := d.WaitSwitch(t, old)
	if now != d.Data[1].Addr() {
		t.Fatalf("new master %s, want the replica %s", now, d.Data[1].Addr())
	}
	if got := d.Master(t); got != d.Data[1] {
		t.Fatalf("Master() = %s, want %s", got.Addr(), now)
	}
	// The client follows the switch: reads what was replicated, writes to the new master.
	waitFor(t, "the client to write to the new master", func() bool { return c.Set(ctx, "k2", "v2", 0).Err() == nil })
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET k on the new master: %q, %v", v, err)
	}
}

// TestSentinelKillMaster: after kill -9 of the master the sentinels agree
// on the replica within about down-after-milliseconds plus an election.
func TestSentinelKillMaster(t *testing.T) {
	d := StartSentinel(t, 1)
	old := d.KillMaster(t)
	if old != d.Data[0].Addr() {
		t.Fatalf("killed %s, want the first master %s", old, d.Data[0].Addr())
	}
	now := d.WaitSwitch(t, old)
	ctx := context.Background()
	if _, err := d.Server(now).Do(ctx, "SET", "k", "v"); err != nil {
		t.Fatalf("SET on the new master %s: %v", now, err)
	}
}

// TestStartSentinelSeesEveryReplica: with two replicas, the deployment
// forms and names the first server master.
func TestStartSentinelSeesEveryReplica(t *testing.T) {
	d := StartSentinel(t, 2)
	if got := d.Master(t); got != d.Data[0] {
		t.Fatalf("master %s, want %s", got.Addr(), d.Data[0].Addr())
	}
	if len(d.Sentinels) != 3 || len(d.Data) != 3 {
		t.Fatalf("%d sentinels and %d data servers, want 3 and 3", len(d.Sentinels), len(d.Data))
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), sentinelWait)
	defer cancel()
	if err := poll(ctx, what, func() (bool, string) { return cond(), what }); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
