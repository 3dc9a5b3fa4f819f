package redistest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of masters only, built from local redis-server processes.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts a cluster of n masters (n >= 1) with the 16384 slots split
// evenly, and stops it when t ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{}
	for i := 0; i < n; i++ {
		dir := t.TempDir()
		s := Start(t, Option{"--cluster-enabled", "yes", "--cluster-config-file", dir + "/nodes.conf",
			"--cluster-node-timeout", "2000"})
		c.Nodes = append(c.Nodes, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.form(ctx); err != nil {
		t.Fatalf("redistest: form cluster: %v", err)
	}
	return c
}

func (c *Cluster) form(ctx context.Context) error {
	per := 16384 / len(c.Nodes)
	for i, s := range c.Nodes {
		lo, hi := i*per, (i+1)*per-1
		if i == len(c.Nodes)-1 {
			hi = 16383
		}
		if _, err := s.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi); err != nil {
			return fmt.Errorf("addslots on %s: %w", s.Addr(), err)
		}
		if i > 0 {
			if _, err := s.Do(ctx, "CLUSTER", "MEET", "127.0.0.1", c.Nodes[0].Port()); err != nil {
				return fmt.Errorf("meet from %s: %w", s.Addr(), err)
			}
		}
	}
	for _, s := range c.Nodes {
		for {
			info, err := s.Do(ctx, "CLUSTER", "INFO")
			if err == nil {
				text := fmt.Sprint(info)
				if strings.Contains(text, "cluster_state:ok") &&
					strings.Contains(text, fmt.Sprintf("cluster_known_nodes:%d", len(c.Nodes))) {
					break
				}
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("cluster not ok on %s: %w (last: %v)", s.Addr(), ctx.Err(), info)
			case <-time.After(20 * time.Millisecond): // polling cluster state; no event to wait on
			}
		}
	}
	return nil
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
