package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/internal/redistest"
)

// Issue 15 item 2: the master holding the fleet's slot (every key of a fleet
// shares one hash tag) fails over. Aim: every shard live again within the
// cluster's own promotion time plus one lease TTL.

const (
	clusterShards  = 8
	clusterWorkers = 3
	clusterLoad    = 40 // dispatches per second from the fake
	// clusterHealSlack is what the bound allows beyond promotion + lease
	// TTL: the workers' next failed command and slot-map reload (go-redis
	// waits 200 ms between reloads), a reconcile round to claim, RESUME or
	// IDENTIFY at the fake (identify window 100 ms per shard) and the
	// status interval before READY shows in Redis, on a loaded 2-core
	// machine under -race.
	clusterHealSlack = 3 * time.Second
)

// clusterWorld is the chaos world with a Redis Cluster of 3 masters, one
// replica each, for Redis; its fleet.redis and fleet.client are the master
// of the fleet's slot, replaced by the promoted replica after a failover.
type clusterWorld struct {
	*chaosWorld
	cluster *redistest.Cluster
}

func newClusterWorld(t *testing.T) *clusterWorld {
	t.Helper()
	needBinaries(t)
	cl := redistest.StartClusterWithReplicas(t, 3, 1)
	fk := startFake(t, clusterShards, clusterLoad, "-identify-window", chaosFakeWindow.String(),
		"-resume-timeout", chaosResumeTimeout.String())
	c := &clusterWorld{cluster: cl, chaosWorld: &chaosWorld{
		fleet:    &fleet{t: t, fake: fk, shards: clusterShards, token: "itest-token", workers: map[string]*proc{}},
		redisURL: "redis+cluster://" + strings.Join(cl.Addrs(), ","), load: clusterLoad, archive: map[string][]int{},
		mayLoseTail: map[string]string{}, splitKeys: map[lease.ShardKey]time.Time{},
	}}
	c.redis = c.master()
	c.client = c.redis.Client(t)
	return c
}

// master is the node serving the fleet's slot.
func (c *clusterWorld) master() *redistest.Server {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := c.cluster.MasterOf(ctx, prefix+"events")
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

// failover runs fault on the fleet's master and its replica under a live
// fleet and load, waits for the replica's promotion, and returns the time
// from the fault to every shard READY (held for chaosSettle) and the
// promotion time.
func (c *clusterWorld) failover(what string, fault func(master, replica *redistest.Server)) (heal, promotion time.Duration) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	replica, err := c.cluster.ReplicaOf(ctx, c.redis)
	if err != nil {
		c.t.Fatal(err)
	}
	start := time.Now()
	fault(c.redis, replica)
	if err := c.cluster.WaitPromoted(ctx, replica); err != nil {
		c.t.Fatal(err)
	}
	promotion = time.Since(start)
	c.redis, c.client = replica, replica.Client(c.t) // read the fleet from the new master
	waited := time.Since(start)
	return waited + c.waitHealed(what), promotion
}

// checkFailover is every check after a failover: heal bound, the fake's
// invariants, each dispatch in the stream exactly once.
func (c *clusterWorld) checkFailover(what string, heal, promotion time.Duration) {
	c.t.Helper()
	bound := promotion + leaseTTL + clusterHealSlack
	c.t.Logf("%s: promoted in %v, every shard READY again %v after the fault (bound: promotion + lease TTL %v + slack %v = %v)",
		what, promotion.Round(time.Millisecond), heal.Round(time.Millisecond), leaseTTL, clusterHealSlack, bound.Round(time.Millisecond))
	if heal > bound {
		c.t.Errorf("%s: every shard READY %v after the fault, want within %v", what, heal.Round(time.Millisecond), bound.Round(time.Millisecond))
	}
	c.noteFailedResumes()
	c.waitCommitted()
	c.checkInvariants()
	rep := c.checkStream()
	for _, p := range rep.problems {
		c.t.Errorf("%s: %s", what, p)
	}
	if rep.checked == 0 {
		c.t.Errorf("%s: no events in the stream", what)
	}
	c.t.Logf("%s: %d events checked over %d sessions, each once; unreachable tails of invalidated sessions: %d",
		what, rep.checked, rep.sessions, rep.lostTail)
	c.checkNoSecret()
}

// startFleet starts the workers and waits until every shard is READY.
func (c *clusterWorld) startFleet() {
	c.t.Helper()
	for range clusterWorkers {
		c.startChaosWorker()
	}
	c.waitHealed("cold start")
}

// TestClusterManualFailover: CLUSTER FAILOVER on the replica of the fleet's
// master (a planned switchover: the master hands over once the replica has
// caught up).
func TestClusterManualFailover(t *testing.T) {
	c := newClusterWorld(t)
	c.startFleet()
	heal, promotion := c.failover("CLUSTER FAILOVER", func(_, replica *redistest.Server) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.cluster.Failover(ctx, replica); err != nil {
			t.Fatal(err)
		}
	})
	c.checkFailover("CLUSTER FAILOVER", heal, promotion)
}

// TestClusterMasterKilled: kill -9 of the fleet's master; the cluster
// promotes its replica after the node timeout and an election.
func TestClusterMasterKilled(t *testing.T) {
	c := newClusterWorld(t)
	c.startFleet()
	heal, promotion := c.failover("master kill -9", func(master, _ *redistest.Server) { master.Kill() })
	c.checkFailover("master kill -9", heal, promotion)
}
