package integration

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/internal/redistest"
)

// Issue 14: a fleet on a Redis Cluster (16 partitions, the default there)
// spreads its keys, its commits and its commands over the masters.

const partitionedShards = 16

// partitionedFleet is a fleet of 3 workers on cl with PARTITIONS unset (so
// the Cluster default: 16), its fake sending load dispatches per second; fleet.redis/client are the master
// of the fleet-wide keys (status, membership), which the harness reads.
func partitionedFleet(t *testing.T, cl *redistest.Cluster, load float64) *fleet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fleetMaster, err := cl.MasterOf(ctx, prefix+"members")
	if err != nil {
		t.Fatal(err)
	}
	f := &fleet{t: t, redis: fleetMaster, client: fleetMaster.Client(t), fake: startFake(t, partitionedShards, load),
		shards: partitionedShards, token: "itest-token", workers: map[string]*proc{}}
	url := "redis+cluster://" + strings.Join(cl.Addrs(), ",")
	for _, id := range []string{"w1", "w2", "w3"} {
		f.startWorkerWith(id, "REDIS_URL="+url, "EVENT_STREAM_MAXLEN=0")
	}
	f.waitAllReady("every shard READY on the partitioned fleet")
	if n := storedKeys(t, f.client, prefix).Partitions(); n != keyspace.ClusterPartitions {
		t.Fatalf("the fleet on Cluster stored %d partitions, want the default %d", n, keyspace.ClusterPartitions)
	}
	return f
}

// nodeLoad is one master's counters at one moment.
type nodeLoad struct {
	calls map[string]int64
	cpu   float64
	keys  int64
}

func (n nodeLoad) total() int64 {
	var s int64
	for _, c := range n.calls {
		s += c
	}
	return s
}

func readLoad(t testing.TB, masters []*redistest.Server) []nodeLoad {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out := make([]nodeLoad, len(masters))
	for i, m := range masters {
		calls, err := m.CommandCalls(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cpu, err := m.CPUSeconds(ctx)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := m.Client(t).DBSize(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = nodeLoad{calls: calls, cpu: cpu, keys: keys}
	}
	return out
}

// streamLens is the length of every partition's stream.
func streamLens(t testing.TB, cc *redis.ClusterClient, keys keyspace.Keys) []int64 {
	t.Helper()
	out := make([]int64, keys.Partitions())
	for p := range out {
		n, err := cc.XLen(context.Background(), keys.Events(p)).Result()
		if err != nil {
			t.Fatal(err)
		}
		out[p] = n
	}
	return out
}

func sum(xs []int64) int64 {
	var s int64
	for _, x := range xs {
		s += x
	}
	return s
}

// TestClusterPartitionsSpread: 3 workers, 16 shards, 16 partitions on 3
// masters: every master holds partitions' streams and commits events into
// them, each master's share of the committed events is at least 15 %, and
// every dispatch is in the streams exactly once (per shard and session,
// seqs 1, 2, 3... without a gap or a repeat).
func TestClusterPartitionsSpread(t *testing.T) {
	needBinaries(t)
	cl := redistest.StartCluster(t, 3)
	cc := cl.Client(t)
	f := partitionedFleet(t, cl, 300)
	keys, err := keyspace.NewKeys(prefix).WithPartitions(keyspace.ClusterPartitions)
	if err != nil {
		t.Fatal(err)
	}
	masters := cl.Nodes
	before := readLoad(t, masters)
	start := sum(streamLens(t, cc, keys))
	poll(t, "2000 more events committed", 30*time.Second, func() bool { return sum(streamLens(t, cc, keys))-start >= 2000 })
	after := readLoad(t, masters)
	report := spreadReport(t, cl, keys, before, after)
	t.Log("\n" + report.String())
	for i, m := range report.masters {
		if m.streams == 0 || m.xadds == 0 {
			t.Errorf("master %d holds %d partition streams and committed %d events: want some of both", i, m.streams, m.xadds)
		}
		if share := float64(m.xadds) / float64(report.xadds); share < 0.15 {
			t.Errorf("master %d committed %.0f%% of the events, want at least 15%%", i, 100*share)
		}
	}
	stopWorkers(t, f) // stop committing before the stream check
	checkPartitionStreams(t, cc, keys)
}

// spread is what each master did between two readLoads.
type spread struct {
	masters []masterShare
	xadds   int64
	calls   int64
	keys    int64
}

type masterShare struct {
	addr                 string
	streams              int   // partition streams it holds
	keys                 int64 // keys at the end
	xadds, calls, script int64 // XADDs (committed events), all commands, EVAL/EVALSHA
	cpu                  float64
}

func spreadReport(t testing.TB, cl *redistest.Cluster, keys keyspace.Keys, before, after []nodeLoad) spread {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var r spread
	for i, m := range cl.Nodes {
		s := masterShare{addr: m.Addr(), keys: after[i].keys, cpu: after[i].cpu - before[i].cpu,
			xadds: after[i].calls["xadd"] - before[i].calls["xadd"], calls: after[i].total() - before[i].total(),
			script: after[i].calls["evalsha"] + after[i].calls["eval"] - before[i].calls["evalsha"] - before[i].calls["eval"]}
		for p := range keys.Partitions() {
			if owner, err := cl.MasterOf(ctx, keys.Events(p)); err == nil && owner == m {
				s.streams++
			}
		}
		r.masters = append(r.masters, s)
		r.xadds += s.xadds
		r.calls += s.calls
		r.keys += s.keys
	}
	return r
}

func (r spread) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "| master | partitions | keys | committed events (XADD) | commands | Redis CPU s |\n|---|---|---|---|---|---|\n")
	pct := func(x, of int64) string { return fmt.Sprintf("%d (%.0f %%)", x, 100*float64(x)/float64(max(of, 1))) }
	for i, m := range r.masters {
		fmt.Fprintf(&b, "| %d | %d | %s | %s | %s | %.2f |\n", i, m.streams, pct(m.keys, r.keys), pct(m.xadds, r.xadds),
			pct(m.calls, r.calls), m.cpu)
	}
	return b.String()
}

// checkPartitionStreams: in every partition's stream, each (shard, session)
// has seqs 1, 2, 3... once each, in order, and each shard is in its own
// partition's stream only.
func checkPartitionStreams(t testing.TB, cc *redis.ClusterClient, keys keyspace.Keys) {
	t.Helper()
	checked := 0
	for p := range keys.Partitions() {
		msgs, err := cc.XRange(context.Background(), keys.Events(p), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		last := map[string]int{}
		for _, m := range msgs {
			shard, _ := strconv.Atoi(fmt.Sprint(m.Values["shard"]))
			count, _ := strconv.Atoi(fmt.Sprint(m.Values["count"]))
			if got := keys.PartitionOf(lease.ShardKey{ID: shard, Count: count}); got != p {
				t.Fatalf("shard %d/%d's event in partition %d's stream, want %d", shard, count, p, got)
			}
			seq, _ := strconv.Atoi(fmt.Sprint(m.Values["seq"]))
			sess := fmt.Sprint(m.Values["shard"], "/", m.Values["session"])
			if prev, ok := last[sess]; ok && seq != prev+1 {
				t.Fatalf("partition %d, shard/session %s: seq %d after %d", p, sess, seq, prev)
			}
			last[sess] = seq
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no events in any partition's stream")
	}
	t.Logf("%d events checked in %d streams: once each, in order", checked, keys.Partitions())
}

// TestClusterPartitionsBenchmark is a benchmark, not a CI test: the same 3
// workers and load on 1 master, then on 3 masters (16 partitions each
// time), for CLUSTER_PARTITIONS_BENCH seconds each: events committed per
// second and Redis CPU time per committed event, summed over the masters.
//
//	CLUSTER_PARTITIONS_BENCH=20 go test -count=1 -timeout 10m -run TestClusterPartitionsBenchmark -v ./test/integration/
func TestClusterPartitionsBenchmark(t *testing.T) {
	secs := envInt(t, "CLUSTER_PARTITIONS_BENCH", 0)
	if secs == 0 {
		t.Skip("a benchmark: set CLUSTER_PARTITIONS_BENCH (seconds per run)")
	}
	needBinaries(t)
	load := envFloat(t, "CLUSTER_PARTITIONS_LOAD", 4000, false)
	for _, masters := range []int{1, 3} {
		t.Run(strconv.Itoa(masters)+" masters", func(t *testing.T) {
			cl := redistest.StartCluster(t, masters)
			cc := cl.Client(t)
			partitionedFleet(t, cl, load)
			keys, _ := keyspace.NewKeys(prefix).WithPartitions(keyspace.ClusterPartitions)
			before, start := readLoad(t, cl.Nodes), sum(streamLens(t, cc, keys))
			began := time.Now()
			time.Sleep(time.Duration(secs) * time.Second) // the measurement window, not a wait for a condition
			after, end := readLoad(t, cl.Nodes), sum(streamLens(t, cc, keys))
			elapsed := time.Since(began).Seconds()
			r := spreadReport(t, cl, keys, before, after)
			cpu := 0.0
			for _, m := range r.masters {
				cpu += m.cpu
			}
			events := end - start
			t.Logf("%d masters, fake load %.0f/s: %d events committed in %.1f s = %.0f events/s; Redis CPU %.2f s = %.1f µs per event\n%s",
				masters, load, events, elapsed, float64(events)/elapsed, cpu, 1e6*cpu/float64(max(events, 1)), r)
		})
	}
}

// TestClusterPartitionManualFailover: CLUSTER FAILOVER of a master that
// serves partitions (not the fleet-wide keys) under load: its partitions
// commit on the promoted replica, and every dispatch is in the streams
// exactly once.
func TestClusterPartitionManualFailover(t *testing.T) {
	needBinaries(t)
	cl := redistest.StartClusterWithReplicas(t, 3, 1)
	cc := cl.Client(t)
	f := partitionedFleet(t, cl, 200)
	keys, err := keyspace.NewKeys(prefix).WithPartitions(keyspace.ClusterPartitions)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var victim *redistest.Server
	for _, m := range cl.Nodes[:3] {
		if m != f.redis {
			victim = m
			break
		}
	}
	var moved []int // partitions the victim serves
	for p := range keys.Partitions() {
		if m, err := cl.MasterOf(ctx, keys.Events(p)); err == nil && m == victim {
			moved = append(moved, p)
		}
	}
	replica, err := cl.ReplicaOf(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Failover(ctx, replica); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitPromoted(ctx, replica); err != nil {
		t.Fatal(err)
	}
	lens := func() int64 {
		var n int64
		for _, p := range moved {
			l, err := cc.XLen(context.Background(), keys.Events(p)).Result()
			if err == nil {
				n += l
			}
		}
		return n
	}
	at := lens()
	poll(t, "the failed-over partitions commit again", 15*time.Second, func() bool { return lens() >= at+200 })
	f.waitAllReady("every shard READY after the failover")
	stopWorkers(t, f) // stop committing before the stream check
	checkPartitionStreams(t, cc, keys)
}

// stopWorkers sends every worker of f SIGTERM and waits for it to exit.
func stopWorkers(t testing.TB, f *fleet) {
	t.Helper()
	for _, w := range f.workers {
		w.signal(syscall.SIGTERM)
	}
	for _, w := range f.workers {
		_ = w.wait(t, 15*time.Second)
	}
}
