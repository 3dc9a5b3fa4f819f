package failover

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/shardfleet/shardfleet/internal/redistest"
	"github.com/shardfleet/shardfleet/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestLeavesTheOldMasterOnTheFirstReport: go-redis's own sentinel is frozen
// (SIGSTOP) before the failover, as is the third, so only the sentinel that
// leads the failover ever reports it, and the old master stays up. A plain
// go-redis failover client following the frozen sentinel keeps its pooled
// connections to the old master and answers from it indefinitely; this
// client must move every command to the new master, and say so once.
func TestLeavesTheOldMasterOnTheFirstReport(t *testing.T) {
	d := redistest.StartSentinel(t, 1)
	old := d.Master(t)
	var promoted *redistest.Server
	for _, s := range d.Data {
		if s != old {
			promoted = s
		}
	}
	t.Logf("master %s, replica %s, sentinels %v (the first leads)", old.Addr(), promoted.Addr(), d.Addrs())
	var logs testutil.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	lead, lagging := d.Sentinels[0], d.Sentinels[1:]
	c := newClient(&redis.FailoverOptions{MasterName: d.Name, SentinelAddrs: []string{lagging[0].Addr()}},
		d.Addrs(), log)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if got := portOf(ctx, t, c); got != old.Port() {
		t.Fatalf("before the failover: commands answered by port %d, want the master's %d", got, old.Port())
	}
	for _, s := range lagging {
		s.Pause()
		t.Cleanup(s.Resume)
	}
	// d.Failover sends SENTINEL FAILOVER to d.Sentinels[0], which leads it
	// alone: the other two are stopped.
	if got := d.Failover(t); got != old.Addr() {
		t.Fatalf("failover replaced %s, want %s", got, old.Addr())
	}
	for {
		if portOf(ctx, t, c) == promoted.Port() {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("commands still answered by the old master %s after %s reported the switch to %s; log:\n%s",
				old.Addr(), lead.Addr(), promoted.Addr(), logs.String())
		case <-time.After(20 * time.Millisecond): // polling the client's view; no event to wait on
		}
	}
	// Every pooled connection left the old master, not just one.
	for i := range 50 {
		if got := portOf(ctx, t, c); got != promoted.Port() {
			t.Fatalf("command %d after the move answered by port %d, want the new master's %d", i, got, promoted.Port())
		}
	}
	if addr, epoch := c.Master(); addr != promoted.Addr() || epoch < 1 {
		t.Errorf("Master() = %s epoch %d, want %s in an epoch after the first", addr, epoch, promoted.Addr())
	}
	if !testutil.HasLine(logs.String(), "leaving the old one", "old="+old.Addr(), "new="+promoted.Addr(), "sentinel="+lead.Addr()) {
		t.Errorf("no log line names the switch %s -> %s reported by %s; log:\n%s", old.Addr(), promoted.Addr(), lead.Addr(), logs.String())
	}
}

// portOf is the port of the server that answers a command on c.
func portOf(ctx context.Context, t *testing.T, c *Client) int {
	t.Helper()
	kv, err := c.ConfigGet(ctx, "port").Result()
	if err != nil {
		t.Fatalf("CONFIG GET port: %v", err)
	}
	p, err := strconv.Atoi(kv["port"])
	if err != nil {
		t.Fatalf("CONFIG GET port: %v", kv)
	}
	return p
}

// TestOfferKeepsTheNewestEpoch: a report from an older epoch (a sentinel that
// lags behind two failovers) or a repeat in the same epoch changes nothing,
// and a newer one closes the connections to every other server.
func TestOfferKeepsTheNewestEpoch(t *testing.T) {
	w := &watch{conns: map[*conn]struct{}{}}
	toA, aPeer := net.Pipe()
	toB, bPeer := net.Pipe()
	defer aPeer.Close()
	defer bPeer.Close()
	defer toB.Close()
	ca := &conn{Conn: toA, w: w, target: "a:1"}
	cb := &conn{Conn: toB, w: w, target: "b:1"}
	w.conns[ca], w.conns[cb] = struct{}{}, struct{}{}

	steps := []struct {
		addr   string
		epoch  int64
		want   string
		wantEp int64
	}{
		{"a:1", 0, "a:1", 0}, // the first answer is taken whatever its epoch
		{"b:1", 2, "b:1", 2}, // newer
		{"a:1", 1, "b:1", 2}, // older: ignored
		{"c:1", 2, "b:1", 2}, // same epoch: ignored
	}
	for i, s := range steps {
		w.offer(s.addr, s.epoch, "s")
		if w.master != s.want || w.epoch != s.wantEp {
			t.Fatalf("step %d: offer(%s, %d): following %s epoch %d, want %s epoch %d",
				i, s.addr, s.epoch, w.master, w.epoch, s.want, s.wantEp)
		}
	}
	if _, err := toA.Write([]byte("x")); err == nil {
		t.Error("the connection to the old master a:1 is still open after the switch to b:1")
	}
	if _, ok := w.conns[cb]; !ok {
		t.Error("the connection to the new master b:1 was dropped")
	}
	if _, ok := w.conns[ca]; ok {
		t.Error("the closed connection to a:1 is still tracked")
	}
}

func TestParseMaster(t *testing.T) {
	for _, flags := range []string{"master", "master,s_down,o_down", ""} {
		addr, epoch, err := parseMaster(map[string]string{"ip": "10.0.0.2", "port": "6380", "config-epoch": "7", "flags": flags})
		if err != nil || addr != "10.0.0.2:6380" || epoch != 7 {
			t.Errorf("flags %q: parseMaster = %q, %d, %v; want 10.0.0.2:6380, 7, nil", flags, addr, epoch, err)
		}
	}
	for _, m := range []map[string]string{
		{"port": "6380", "config-epoch": "7"},
		{"ip": "10.0.0.2", "config-epoch": "7"},
		{"ip": "10.0.0.2", "port": "6380"},
		{"ip": "10.0.0.2", "port": "6380", "config-epoch": "x"},
		// the leader of a failover: new epoch, old address
		{"ip": "10.0.0.2", "port": "6380", "config-epoch": "8", "flags": "master,o_down,failover_in_progress"},
	} {
		if _, _, err := parseMaster(m); err == nil {
			t.Errorf("parseMaster(%v) accepted a reply without a usable address and epoch", m)
		}
	}
}
