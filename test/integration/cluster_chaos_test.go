package integration

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/redistest"
)

// Issue 14's evidence "the chaos suite run on the cluster": the chaos
// suite's rounds and checks on a fleet of 16 partitions over a Redis
// Cluster of 3 masters with a replica each. The faults are those that mean
// the same on a Cluster (the workers reach its nodes directly, so the fault
// proxy's rounds and the data-loss rounds of one redis-server do not apply),
// plus the Cluster's own: a planned failover and kill -9 of the fleet's
// master.
//
// CI runs clusterChaosShort, one of each worker and Discord fault and both
// failovers; CHAOS_CLUSTER_ALL=1 runs every fault in clusterChaosRounds:
//
//	CHAOS_CLUSTER_ALL=1 go test -race -count=1 -run TestChaosOnCluster -v ./test/integration/
var (
	clusterChaosShort  = []string{"kill -9", "op 9 false", "CLUSTER FAILOVER", "SIGTERM", "master kill -9"}
	clusterChaosRounds = []string{"kill -9", "SIGSTOP > TTL", "SIGTERM", "join/leave", "op 7", "op 9 true", "op 9 false",
		"4011 reshard", "CLUSTER FAILOVER", "master kill -9"}
)

func TestChaosOnCluster(t *testing.T) {
	rounds := clusterChaosShort
	if all, _ := strconv.ParseBool(os.Getenv("CHAOS_CLUSTER_ALL")); all {
		rounds = clusterChaosRounds
	}
	c := newClusterWorld(t, append([]string{"-max-guilds-per-shard", strconv.Itoa(chaosMaxGuildsPerShard)}, cacheWorldFlags...)...)
	c.mutations, c.cliRedisURL = chaosMutations, c.redisURL
	c.startFleet()
	faults := append(slices.Clone(chaosFaults), c.failoverFaults()...)
	rng := rand.New(rand.NewPCG(1, 2))
	var records []roundRecord
	for _, name := range rounds {
		i := slices.IndexFunc(faults, func(f chaosFault) bool { return f.name == name })
		if i < 0 {
			t.Fatalf("no chaos fault %q", name)
		}
		records = append(records, c.round(len(records)+1, faults[i], rng))
		t.Log(records[len(records)-1].row())
		if t.Failed() {
			break
		}
	}
	t.Log("\n" + chaosTable(records))
	c.checkNoSecret()
}

// failoverFaults are the Cluster's rounds: the fleet's master fails over
// (failover waits until every shard is READY again, and checks the bound).
func (c *clusterWorld) failoverFaults() []chaosFault {
	fault := func(name string, f func(master, replica *redistest.Server)) chaosFault {
		return chaosFault{name, func(_ *chaosWorld, _ *rand.Rand, r *roundRecord) {
			heal, promotion := c.failover(name, f)
			c.checkHealBound(name, heal, promotion)
			c.noteHeartbeatTimeouts()
			r.note = "promoted in " + promotion.Round(time.Millisecond).String() + ", READY again after " +
				heal.Round(time.Millisecond).String()
		}}
	}
	return []chaosFault{
		fault("CLUSTER FAILOVER", func(_, replica *redistest.Server) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := c.cluster.Failover(ctx, replica); err != nil {
				c.t.Fatal(err)
			}
		}),
		fault("master kill -9", func(master, _ *redistest.Server) { master.Kill() }),
	}
}
