package redistest

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// NodeTimeout is the clusters' --cluster-node-timeout: how long a silent
// master has until the others mark it failed and its replica is elected.
// Short, so that a failover test takes seconds, not the default 15 s.
const NodeTimeout = 1000 * time.Millisecond

// busOffset is what Redis adds to a node's port for its cluster bus port.
const busOffset = 10000

// Cluster is a Redis Cluster built from local redis-server processes.
type Cluster struct {
	// Nodes holds the masters first (in slot order), then the replicas: those
	// of the first master, then those of the second...
	Nodes []*Server
}

// StartCluster starts a cluster of n masters (n >= 1) with the 16384 slots split
// evenly, and stops it when t ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	return StartClusterWithReplicas(t, n, 0)
}

// StartClusterWithReplicas starts a cluster of masters (with the 16384 slots
// split evenly) and replicasPerMaster replicas of each, every node with its
// own directory, and returns once every replica is in sync and every node
// knows the whole topology and reports the cluster ok. It stops the cluster
// when t ends.
func StartClusterWithReplicas(t testing.TB, masters, replicasPerMaster int) *Cluster {
	t.Helper()
	c := &Cluster{}
	for range masters * (1 + replicasPerMaster) {
		c.Nodes = append(c.Nodes, startWithPorts(t, clusterPort, Option{"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf", // relative: in the node's own --dir
			"--cluster-node-timeout", strconv.FormatInt(NodeTimeout.Milliseconds(), 10)}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.form(ctx, masters, replicasPerMaster); err != nil {
		t.Fatalf("redistest: form cluster: %v", err)
	}
	return c
}

// clusterPort picks a free port whose cluster bus port (port+10000) is free
// too, and below 65536: the kernel's ephemeral range goes above 55535.
func clusterPort() (int, error) {
	for range 50 {
		port, err := freePort()
		if err != nil {
			return 0, err
		}
		if port+busOffset > 65535 {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+busOffset))
		if err != nil {
			continue
		}
		_ = l.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free port below %d with a free cluster bus port", 65536-busOffset)
}

func (c *Cluster) form(ctx context.Context, masters, replicasPerMaster int) error {
	per := 16384 / masters
	for i, s := range c.Nodes[:masters] {
		lo, hi := i*per, (i+1)*per-1
		if i == masters-1 {
			hi = 16383
		}
		if _, err := s.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi); err != nil {
			return fmt.Errorf("addslots on %s: %w", s.Addr(), err)
		}
	}
	for _, s := range c.Nodes[1:] {
		if _, err := s.Do(ctx, "CLUSTER", "MEET", "127.0.0.1", c.Nodes[0].Port()); err != nil {
			return fmt.Errorf("meet from %s: %w", s.Addr(), err)
		}
	}
	// CLUSTER REPLICATE needs the master known to the replica.
	if err := c.waitAll(ctx, func(view []nodeLine, _ string) bool { return len(view) == len(c.Nodes) }); err != nil {
		return err
	}
	for i, s := range c.Nodes[masters:] {
		master, err := c.Nodes[i/replicasPerMaster].self(ctx)
		if err != nil {
			return err
		}
		if _, err := s.Do(ctx, "CLUSTER", "REPLICATE", master.id); err != nil {
			return fmt.Errorf("replicate on %s: %w", s.Addr(), err)
		}
	}
	// A failover needs the replica in sync, and every master's vote.
	return c.waitAll(ctx, func(view []nodeLine, info string) bool {
		replicas := 0
		for _, n := range view {
			if n.has("slave") {
				replicas++
			}
		}
		self := myself(view)
		return strings.Contains(info, "cluster_state:ok") && replicas == masters*replicasPerMaster &&
			(self.has("master") || strings.Contains(info, "master_link_status:up"))
	})
}

// waitAll polls until ok holds on every node (see waitCluster).
func (c *Cluster) waitAll(ctx context.Context, ok func(view []nodeLine, info string) bool) error {
	for _, s := range c.Nodes {
		if err := s.waitCluster(ctx, "cluster formed", ok); err != nil {
			return err
		}
	}
	return nil
}

// waitCluster polls until ok holds on s, given its CLUSTER NODES and its
// CLUSTER INFO followed by INFO replication.
func (s *Server) waitCluster(ctx context.Context, what string, ok func(view []nodeLine, info string) bool) error {
	return poll(ctx, what+" on "+s.Addr(), func() (bool, string) {
		view, err := s.clusterNodes(ctx)
		if err != nil {
			return false, err.Error()
		}
		info, err := s.clusterInfo(ctx)
		if err != nil {
			return false, err.Error()
		}
		return ok(view, info), info
	})
}

// poll calls cond every 20 ms until it holds or ctx ends; why is cond's last
// word, for the error.
func poll(ctx context.Context, what string, cond func() (ok bool, why string)) error {
	for {
		ok, why := cond()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last: %s)", what, ctx.Err(), why)
		case <-time.After(20 * time.Millisecond): // polling cluster state; no event to wait on
		}
	}
}

// Addrs lists the nodes' addresses.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		addrs[i] = s.Addr()
	}
	return addrs
}

// Client returns a cluster client, closed when t ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// MasterOf is the node that serves key's slot as master, by its own
// account (the latest, by config epoch, if two claim it). Nodes that do not answer (killed) are skipped.
func (c *Cluster) MasterOf(ctx context.Context, key string) (*Server, error) {
	slot, err := c.keySlot(ctx, key)
	if err != nil {
		return nil, err
	}
	var best *Server
	var bestEpoch int64
	for _, s := range c.Nodes {
		// A demoted master may not have heard yet: the higher config epoch wins, as in Redis.
		if self, err := s.self(ctx); err == nil && self.has("master") && self.serves(slot) && (best == nil || self.epoch > bestEpoch) {
			best, bestEpoch = s, self.epoch
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no live node is master of slot %d (key %q)", slot, key)
	}
	return best, nil
}

// ReplicaOf is a live replica of master.
func (c *Cluster) ReplicaOf(ctx context.Context, master *Server) (*Server, error) {
	m, err := master.self(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range c.Nodes {
		if self, err := s.self(ctx); err == nil && self.master == m.id {
			return s, nil
		}
	}
	return nil, fmt.Errorf("no live replica of %s", master.Addr())
}

// Failover runs CLUSTER FAILOVER on replica: a manual failover, in which its
// master stops writes until the replica has caught up, then hands over.
func (c *Cluster) Failover(ctx context.Context, replica *Server) error {
	if _, err := replica.Do(ctx, "CLUSTER", "FAILOVER"); err != nil {
		return fmt.Errorf("cluster failover on %s: %w", replica.Addr(), err)
	}
	return nil
}

// WaitPromoted polls until replica calls itself a master and reports the
// cluster ok, which is when it serves its old master's slots.
func (c *Cluster) WaitPromoted(ctx context.Context, replica *Server) error {
	return replica.waitCluster(ctx, "promotion to master", func(view []nodeLine, info string) bool {
		return myself(view).has("master") && strings.Contains(info, "cluster_state:ok")
	})
}

func (c *Cluster) keySlot(ctx context.Context, key string) (int, error) {
	var lastErr error
	for _, s := range c.Nodes {
		v, err := s.Do(ctx, "CLUSTER", "KEYSLOT", key)
		if err == nil {
			slot, _ := v.(int64)
			return int(slot), nil
		}
		lastErr = err
	}
	return 0, fmt.Errorf("cluster keyslot: no node answers: %w", lastErr)
}

// nodeLine is one line of CLUSTER NODES.
type nodeLine struct {
	id     string
	flags  []string // myself, master, slave, fail...
	master string   // a replica's master ID, else "-"
	epoch  int64    // config epoch
	slots  []string // "0-5460", "5461"; migration entries in brackets
}

func (n nodeLine) has(flag string) bool { return slices.Contains(n.flags, flag) }

func (n nodeLine) serves(slot int) bool {
	for _, r := range n.slots {
		lo, hi, isRange := strings.Cut(r, "-")
		a, errA := strconv.Atoi(lo)
		b, errB := a, error(nil)
		if isRange {
			b, errB = strconv.Atoi(hi)
		}
		if errA == nil && errB == nil && a <= slot && slot <= b {
			return true
		}
	}
	return false
}

func parseClusterNodes(text string) []nodeLine {
	var out []nodeLine
	for line := range strings.Lines(text) {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		epoch, _ := strconv.ParseInt(f[6], 10, 64)
		out = append(out, nodeLine{id: f[0], flags: strings.Split(f[2], ","), master: f[3], epoch: epoch, slots: f[8:]})
	}
	return out
}

func myself(view []nodeLine) nodeLine {
	for _, n := range view {
		if n.has("myself") {
			return n
		}
	}
	return nodeLine{}
}

func (s *Server) clusterNodes(ctx context.Context) ([]nodeLine, error) {
	v, err := s.Do(ctx, "CLUSTER", "NODES")
	if err != nil {
		return nil, fmt.Errorf("cluster nodes on %s: %w", s.Addr(), err)
	}
	text, _ := v.(string)
	return parseClusterNodes(text), nil
}

// self is the node's own line of CLUSTER NODES.
func (s *Server) self(ctx context.Context) (nodeLine, error) {
	view, err := s.clusterNodes(ctx)
	if err != nil {
		return nodeLine{}, err
	}
	return myself(view), nil
}

// clusterInfo is CLUSTER INFO followed by INFO replication.
func (s *Server) clusterInfo(ctx context.Context) (string, error) {
	ci, err := s.Do(ctx, "CLUSTER", "INFO")
	if err != nil {
		return "", fmt.Errorf("cluster info on %s: %w", s.Addr(), err)
	}
	ri, err := s.Do(ctx, "INFO", "replication")
	if err != nil {
		return "", fmt.Errorf("info replication on %s: %w", s.Addr(), err)
	}
	return fmt.Sprint(ci) + fmt.Sprint(ri), nil
}

// CPUSeconds is the server's CPU time so far (INFO cpu: used_cpu_sys +
// used_cpu_user), for per-node cost figures.
func (s *Server) CPUSeconds(ctx context.Context) (float64, error) {
	info, err := s.Do(ctx, "INFO", "cpu")
	if err != nil {
		return 0, fmt.Errorf("info cpu: %w", err)
	}
	text, _ := info.(string)
	total := 0.0
	for line := range strings.Lines(text) {
		name, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (name != "used_cpu_sys" && name != "used_cpu_user") {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("info cpu: %s: %w", line, err)
		}
		total += f
	}
	return total, nil
}
