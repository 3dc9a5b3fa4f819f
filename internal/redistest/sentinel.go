package redistest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sentinel is a Sentinel deployment of local processes: a master, its
// replicas and three sentinels that monitor it under one name, with a quorum
// of 2.
type Sentinel struct {
	Name      string
	Data      []*Server // the master it started with, then the replicas
	Sentinels []*Server
}

// Sentinel timings, small so that tests fail over in seconds.
const (
	SentinelDownAfter       = time.Second     // down-after-milliseconds: a silent master is down after this
	sentinelFailoverTimeout = 5 * time.Second // failover-timeout: also how long before a failed failover is retried
	sentinelQuorum          = 2
	sentinelCount           = 3
	sentinelWait            = 30 * time.Second // bound on forming the deployment and on a switch
)

// StartSentinel starts a master named "m", n replicas of it and three
// sentinels, each process with its own directory (and each sentinel with its
// own config file, which it rewrites), and waits until every sentinel agrees
// on the master and sees the n replicas and the other sentinels. Everything
// stops when t ends.
func StartSentinel(t testing.TB, n int) *Sentinel {
	t.Helper()
	master := Start(t)
	d := &Sentinel{Name: "m", Data: []*Server{master}}
	for range n {
		d.Data = append(d.Data, Start(t, Option{"--replicaof", "127.0.0.1", strconv.Itoa(master.Port())}))
	}
	for range sentinelCount {
		d.Sentinels = append(d.Sentinels, d.startSentinel(t, master.Port()))
	}
	t.Cleanup(func() {
		if t.Failed() {
			d.logSentinels(t)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), sentinelWait)
	defer cancel()
	if err := d.waitFormed(ctx, master.Addr(), n); err != nil {
		t.Fatalf("redistest: sentinel deployment not formed within %v: %v", sentinelWait, err)
	}
	return d
}

// logSentinels logs the end of each sentinel's log: its view of a failover
// (+promoted-slave, +switch-master, aborts), with millisecond times.
func (d *Sentinel) logSentinels(t testing.TB) {
	for _, s := range d.Sentinels {
		text, err := os.ReadFile(s.logFile())
		if err != nil {
			t.Logf("sentinel %s: %v", s.Addr(), err)
			continue
		}
		lines := strings.Split(strings.TrimRight(string(text), "\n"), "\n")
		t.Logf("--- log of sentinel %s (last 25 lines) ---\n%s", s.Addr(), strings.Join(lines[max(0, len(lines)-25):], "\n"))
	}
}

// startSentinel starts one sentinel monitoring the master on masterPort.
func (d *Sentinel) startSentinel(t testing.TB, masterPort int) *Server {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	text := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d %[3]d\n"+
		"sentinel down-after-milliseconds %[1]s %[4]d\n"+
		"sentinel failover-timeout %[1]s %[5]d\n",
		d.Name, masterPort, sentinelQuorum, SentinelDownAfter.Milliseconds(), sentinelFailoverTimeout.Milliseconds())
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	s := &Server{dir: dir, conf: conf, args: []string{"--sentinel"}}
	if err := s.startOnFreePort(freePort); err != nil {
		t.Fatalf("redistest: sentinel: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// waitFormed polls every sentinel until it names master, sees n replicas with
// their link to the master up, and knows the other sentinels: before that,
// SENTINEL FAILOVER may find no replica to promote and a quorum may not form.
func (d *Sentinel) waitFormed(ctx context.Context, master string, n int) error {
	for _, s := range d.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
		err := poll(ctx, "sentinels to agree", func() (bool, string) { return sentinelFormed(ctx, sc, d.Name, master, n) })
		_ = sc.Close()
		if err != nil {
			return fmt.Errorf("sentinel %s: %w", s.Addr(), err)
		}
	}
	return nil
}

// sentinelFormed is one poll of waitFormed on one sentinel; it says why not.
func sentinelFormed(ctx context.Context, sc *redis.SentinelClient, name, master string, n int) (bool, string) {
	m, err := sc.Master(ctx, name).Result()
	if err != nil {
		return false, err.Error()
	}
	if got := hostPort(m["ip"], m["port"]); got != master || m["flags"] != "master" {
		return false, fmt.Sprintf("master %s flags %q, want %s", got, m["flags"], master)
	}
	if m["num-slaves"] != strconv.Itoa(n) || m["num-other-sentinels"] != strconv.Itoa(sentinelCount-1) {
		return false, fmt.Sprintf("%s replicas and %s other sentinels known", m["num-slaves"], m["num-other-sentinels"])
	}
	replicas, err := sc.Replicas(ctx, name).Result()
	if err != nil {
		return false, err.Error()
	}
	for _, r := range replicas {
		if r["flags"] != "slave" || r["master-link-status"] != "ok" {
			return false, fmt.Sprintf("replica %s flags %q link %q", hostPort(r["ip"], r["port"]), r["flags"], r["master-link-status"])
		}
	}
	return true, ""
}

func hostPort(ip, port string) string { return ip + ":" + port }

// Addrs are the sentinels' addresses.
func (d *Sentinel) Addrs() []string {
	addrs := make([]string, len(d.Sentinels))
	for i, s := range d.Sentinels {
		addrs[i] = s.Addr()
	}
	return addrs
}

// URL is the redis+sentinel:// URL a worker takes as REDIS_URL.
func (d *Sentinel) URL() string {
	return "redis+sentinel://" + strings.Join(d.Addrs(), ",") + "/?master_name=" + d.Name
}

// Client returns a client that follows the master the sentinels name,
// closed when t ends.
func (d *Sentinel) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: d.Name, SentinelAddrs: d.Addrs()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// MasterAddr is the master's address as the first sentinel that answers
// reports it (SENTINEL GET-MASTER-ADDR-BY-NAME).
func (d *Sentinel) MasterAddr(ctx context.Context) (string, error) {
	var errs []string
	for _, s := range d.Sentinels {
		addr, err := d.MasterAddrAt(ctx, s)
		if err == nil {
			return addr, nil
		}
		errs = append(errs, err.Error())
	}
	return "", fmt.Errorf("no sentinel names the master: %s", strings.Join(errs, "; "))
}

// MasterAddrAt is the master's address as sentinel s reports it.
func (d *Sentinel) MasterAddrAt(ctx context.Context, s *Server) (string, error) {
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer sc.Close()
	hp, err := sc.GetMasterAddrByName(ctx, d.Name).Result()
	if err != nil {
		return "", fmt.Errorf("sentinel %s: %w", s.Addr(), err)
	}
	return hostPort(hp[0], hp[1]), nil
}

// Server is the data server (master or replica) at addr, nil if none.
func (d *Sentinel) Server(addr string) *Server {
	for _, s := range d.Data {
		if s.Addr() == addr {
			return s
		}
	}
	return nil
}

// Master is the data server the sentinels name master.
func (d *Sentinel) Master(t testing.TB) *Server {
	t.Helper()
	addr := d.masterAddr(t)
	s := d.Server(addr)
	if s == nil {
		t.Fatalf("redistest: the sentinels name %s master, not one of this deployment's servers", addr)
	}
	return s
}

func (d *Sentinel) masterAddr(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addr, err := d.MasterAddr(ctx)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return addr
}

// Failover asks a sentinel for a planned failover (SENTINEL FAILOVER, no
// agreement from the others needed) and returns the master it replaces; it
// does not wait for the switch (see WaitSwitch).
func (d *Sentinel) Failover(t testing.TB) string {
	t.Helper()
	old := d.masterAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sc := redis.NewSentinelClient(&redis.Options{Addr: d.Sentinels[0].Addr(), MaxRetries: -1})
	defer sc.Close()
	if err := sc.Failover(ctx, d.Name).Err(); err != nil {
		t.Fatalf("redistest: SENTINEL FAILOVER %s: %v", d.Name, err)
	}
	return old
}

// KillMaster kills the current master with SIGKILL (its data is gone; it is
// not restarted) and returns its address.
func (d *Sentinel) KillMaster(t testing.TB) string {
	t.Helper()
	m := d.Master(t)
	m.Kill()
	return m.Addr()
}

// WaitSwitch polls until every sentinel names the same master other than old
// and that server says it is a master (ROLE), and returns its address.
func (d *Sentinel) WaitSwitch(t testing.TB, old string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), sentinelWait)
	defer cancel()
	var now string
	err := poll(ctx, "the sentinels to switch", func() (bool, string) {
		var ok bool
		var why string
		now, ok, why = d.agreedMaster(ctx)
		switch {
		case !ok:
			return false, why
		case now == old:
			return false, "the sentinels still name " + old
		}
		srv := d.Server(now)
		if srv == nil {
			return false, now + " is not one of this deployment's servers"
		}
		role, err := srv.Do(ctx, "ROLE")
		if r, _ := role.([]any); err != nil || len(r) == 0 || r[0] != "master" {
			return false, fmt.Sprintf("%s: ROLE %v %v", now, role, err)
		}
		return true, ""
	})
	if err != nil {
		t.Fatalf("redistest: no switch from master %s within %v: %v", old, sentinelWait, err)
	}
	return now
}

// agreedMaster is the master every sentinel names, if they agree.
func (d *Sentinel) agreedMaster(ctx context.Context) (string, bool, string) {
	var first string
	for i, s := range d.Sentinels {
		addr, err := d.MasterAddrAt(ctx, s)
		if err != nil {
			return "", false, err.Error()
		}
		if i == 0 {
			first = addr
		} else if addr != first {
			return "", false, fmt.Sprintf("sentinels disagree: %s names %s, %s names %s", d.Sentinels[0].Addr(), first, s.Addr(), addr)
		}
	}
	return first, true, ""
}
