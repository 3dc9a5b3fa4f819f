package redistest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestRestartLosesData(t *testing.T) {
	s := Start(t)
	c := s.Client(t)
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Restart(t)
	if err := c.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("after restart: got %v, want redis.Nil", err)
	}
}

func TestCluster(t *testing.T) {
	cl := StartCluster(t, 3)
	c := cl.Client(t)
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c", "{x}1", "{x}2"} {
		if err := c.Set(ctx, k, k, 0).Err(); err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
	}
	if err := c.Get(ctx, "{x}2").Err(); err != nil {
		t.Fatal(err)
	}
}

func TestCommandCalls(t *testing.T) {
	s := Start(t)
	c := s.Client(t)
	ctx := context.Background()
	script := redis.NewScript(`return redis.call('INCR', KEYS[1])`)
	for range 3 {
		if err := script.Run(ctx, c, []string{"n"}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	calls, err := s.CommandCalls(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The first EVALSHA finds no script (NOSCRIPT) and go-redis falls back to EVAL.
	if calls["evalsha"]+calls["eval"] < 3 || calls["incr"] != 3 {
		t.Fatalf("calls = %v, want 3 script runs and 3 INCRs", calls)
	}
}

// TestClusterFailover moves a key's slot twice: by CLUSTER FAILOVER, then
// by killing the new master, each time to the dead or demoted master's
// replica, with the key kept.
func TestClusterFailover(t *testing.T) {
	cl := StartClusterWithReplicas(t, 3, 1)
	for _, s := range cl.Nodes {
		if s.Port()+busOffset > 65535 {
			t.Fatalf("node on port %d: its cluster bus port is out of range", s.Port())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const key = "{x}k"
	if err := cl.Client(t).Set(ctx, key, "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	first, err := cl.MasterOf(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	// WAIT: the replica has the key before its master goes.
	if n, err := first.Do(ctx, "WAIT", 1, 5000); err != nil || n != int64(1) {
		t.Fatalf("WAIT for the replica: %v, %v", n, err)
	}
	second, err := cl.ReplicaOf(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Failover(ctx, second); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitPromoted(ctx, second); err != nil {
		t.Fatal(err)
	}
	checkMaster(ctx, t, cl, key, second)

	// The old master becomes the new master's replica.
	err = poll(ctx, "the old master a replica of the new", func() (bool, string) {
		r, err := cl.ReplicaOf(ctx, second)
		return err == nil && r == first, fmt.Sprint(err)
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := second.Do(ctx, "WAIT", 1, 5000); err != nil || n != int64(1) {
		t.Fatalf("WAIT for the replica: %v, %v", n, err)
	}
	second.Kill()
	if err := cl.WaitPromoted(ctx, first); err != nil {
		t.Fatal(err)
	}
	checkMaster(ctx, t, cl, key, first)
}

func checkMaster(ctx context.Context, t *testing.T, cl *Cluster, key string, want *Server) {
	t.Helper()
	if m, err := cl.MasterOf(ctx, key); err != nil || m != want {
		t.Fatalf("master of %s: %v, %v; want %s", key, m, err, want.Addr())
	}
	if v, err := want.Do(ctx, "GET", key); err != nil || v != "v" {
		t.Fatalf("GET %s on the new master: %v, %v", key, v, err)
	}
}
