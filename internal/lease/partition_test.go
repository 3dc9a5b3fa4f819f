package lease

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/internal/redistest"
	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// endGraceAll ends the data-loss probe of every partition of keys.
func endGraceAll(t testing.TB, client redis.UniversalClient, keys Keys) {
	t.Helper()
	for p := range keys.Partitions() {
		if err := client.Del(testCtx(t), keys.Grace(p)).Err(); err != nil {
			t.Fatalf("end grace: %v", err)
		}
	}
}

// partitionedCluster is a 3-master Redis Cluster that keeps serving the
// slots of its live masters when one dies (cluster-require-full-coverage
// no), so that one master's loss costs only its partitions.
func partitionedCluster(t *testing.T) (*redistest.Cluster, *redis.ClusterClient) {
	t.Helper()
	cl := redistest.StartCluster(t, 3)
	for _, n := range cl.Nodes {
		if _, err := n.Do(testCtx(t), "CONFIG", "SET", "cluster-require-full-coverage", "no"); err != nil {
			t.Fatal(err)
		}
	}
	return cl, cl.Client(t)
}

// TestPartitionedFleetOnCluster: with 16 partitions on 3 masters, every
// master holds leases (the partitions spread), every fenced write works in
// its partition's slot, a lease is exclusive and its token grows from one
// owner to the next.
func TestPartitionedFleetOnCluster(t *testing.T) {
	cl, cc := partitionedCluster(t)
	ctx := testCtx(t)
	cfg := testConfig("fleet")
	cfg.Partitions = keyspace.ClusterPartitions
	a := newSession(t, cc, cfg)
	b := newSession(t, cc, cfg)
	k := a.Keys()
	if k.Partitions() != keyspace.ClusterPartitions {
		t.Fatalf("session keys have %d partitions, want %d", k.Partitions(), keyspace.ClusterPartitions)
	}
	endGraceAll(t, cc, k)
	var leases []*Lease
	for id := range 16 {
		l := claimOK(t, a, ShardKey{ID: id, Count: 16})
		if err := l.SaveState(ctx, gateway.ShardState{SessionID: "s", Sequence: id}); err != nil {
			t.Fatal(err)
		}
		leases = append(leases, l)
	}
	if _, err := b.Claim(ctx, ShardKey{ID: 5, Count: 16}); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("b claimed a's shard: %v", err)
	}
	perMaster := map[string]int{}
	for id := range 16 {
		m, err := cl.MasterOf(ctx, k.Lease(ShardKey{ID: id, Count: 16}))
		if err != nil {
			t.Fatal(err)
		}
		perMaster[m.Addr()]++
	}
	if len(perMaster) != 3 {
		t.Fatalf("leases per master %v: want every one of 3 masters to hold some", perMaster)
	}
	t.Logf("leases per master: %v", perMaster)
	l := leases[5]
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	lb := claimOK(t, b, l.Key())
	if lb.Token() <= l.Token() {
		t.Fatalf("tokens %d then %d", l.Token(), lb.Token())
	}
	if st, err := b.LoadState(ctx, l.Key()); err != nil || st.Sequence != 5 {
		t.Fatalf("state handed over = %+v, %v", st, err)
	}
	if ok, err := leases[6].Valid(ctx); err != nil || !ok {
		t.Fatalf("a's lease of another partition: valid %v, %v", ok, err)
	}
}

// victimWorld is a session holding 16 shards, one per partition, on a
// 3-master cluster, and a master that serves partitions but not the
// fleet-wide keys: the victim of a fault.
type victimWorld struct {
	cc       *redis.ClusterClient
	a        *Session
	k        Keys
	cfg      Config
	victim   *redistest.Server
	leases   []*Lease
	onVictim map[int]bool // partition -> served by the victim
}

func newVictimWorld(t *testing.T) *victimWorld {
	t.Helper()
	cl, cc := partitionedCluster(t)
	ctx := testCtx(t)
	cfg := testConfig("fleet")
	cfg.Partitions = keyspace.ClusterPartitions
	a := newSession(t, cc, cfg)
	k := a.Keys()
	endGraceAll(t, cc, k)
	fleetMaster, err := cl.MasterOf(ctx, k.Members())
	if err != nil {
		t.Fatal(err)
	}
	w := &victimWorld{cc: cc, a: a, k: k, cfg: cfg, victim: cl.Nodes[0], onVictim: map[int]bool{}}
	if w.victim == fleetMaster {
		w.victim = cl.Nodes[1]
	}
	for id := range 16 {
		key := ShardKey{ID: id, Count: 16}
		w.leases = append(w.leases, claimOK(t, a, key))
		m, err := cl.MasterOf(ctx, k.Lease(key))
		if err != nil {
			t.Fatal(err)
		}
		w.onVictim[k.PartitionOf(key)] = m == w.victim
	}
	return w
}

// TestPartitionSelfFences: a master (not the fleet-wide keys') dies; the
// partitions it served self-fence at their renew deadline, the others and
// the session live on.
func TestPartitionSelfFences(t *testing.T) {
	w := newVictimWorld(t)
	ctx := testCtx(t)
	a, k, cfg, leases, onVictim := w.a, w.k, w.cfg, w.leases, w.onVictim
	w.victim.Kill()
	eventually(t, 3*time.Second, "the dead master's partitions fenced", func() bool {
		for _, l := range leases {
			if onVictim[k.PartitionOf(l.Key())] && !isClosed(l.Done()) {
				return false
			}
		}
		return true
	})
	for _, l := range leases {
		if onVictim[k.PartitionOf(l.Key())] && !errors.Is(l.Err(), ErrSelfFenced) {
			t.Fatalf("lease %v ended with %v, want ErrSelfFenced", l.Key(), l.Err())
		}
	}
	// Well past the deadline, the other partitions still live and renew.
	before := a.view.Load()
	eventually(t, 3*time.Second, "renews after the kill", func() bool { return a.view.Load() != before })
	time.Sleep(2 * cfg.RenewDeadline) // the fault runs on: a fence of the live partitions would show by now
	for _, l := range leases {
		if !onVictim[k.PartitionOf(l.Key())] {
			if isClosed(l.Done()) {
				t.Fatalf("lease %v of a live master's partition ended: %v", l.Key(), l.Err())
			}
			vctx, cancel := context.WithTimeout(ctx, time.Second)
			ok, err := l.Valid(vctx)
			cancel()
			if err != nil || !ok {
				t.Fatalf("lease %v: valid %v, %v", l.Key(), ok, err)
			}
		}
	}
	if isClosed(a.Done()) {
		t.Fatalf("session ended: %v", a.Err())
	}
}

// TestPartitionDataLoss: one master restarts empty (FLUSHALL): the holder
// finds the epoch of each partition it served changed, re-asserts its leases
// there with their tokens, and the data-loss grace holds back claims in those
// partitions only; the session and every lease live on.
func TestPartitionDataLoss(t *testing.T) {
	w := newVictimWorld(t)
	ctx := testCtx(t)
	a, k, cc, leases, onVictim := w.a, w.k, w.cc, w.leases, w.onVictim
	if _, err := w.victim.Do(ctx, "FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "the lost leases re-asserted with their tokens", func() bool {
		for _, l := range leases {
			if tok, err := cc.HGet(ctx, k.Lease(l.Key()), "token").Uint64(); err != nil || tok != l.Token() {
				return false
			}
		}
		return true
	})
	for _, l := range leases {
		if isClosed(l.Done()) {
			t.Fatalf("lease %v ended: %v", l.Key(), l.Err())
		}
		p := k.PartitionOf(l.Key())
		pttl, err := cc.PTTL(ctx, k.Grace(p)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if inGrace := pttl > 0; inGrace != onVictim[p] {
			t.Fatalf("partition %d (on the flushed master: %v): grace PTTL %v", p, onVictim[p], pttl)
		}
	}
	if isClosed(a.Done()) {
		t.Fatalf("session ended: %v", a.Err())
	}
}

// BenchmarkRenew is one keep-alive round (renewOnce: the fleet-wide renew and
// every partition's, one pipeline per node, all nodes at once) on a single
// Redis with 1 and 16 partitions, and on a 3-master Cluster with 16: the
// pipeline keeps it one round trip per node, the nodes in parallel.
//
//	go test -run '^$' -bench BenchmarkRenew -benchtime 2000x ./internal/lease/
func BenchmarkRenew(b *testing.B) {
	single := func(b *testing.B) redis.UniversalClient {
		srv := redistest.Start(b)
		return newClient(b, srv.Addr())
	}
	var trips atomic.Int64 // pipelines and commands sent to the nodes
	cluster := func(b *testing.B) redis.UniversalClient {
		cl := redistest.StartCluster(b, 3)
		cc := cl.Client(b)
		cc.OnNewNode(func(n *redis.Client) { n.AddHook(tripCounter{&trips}) })
		return cc
	}
	for _, c := range []struct {
		name   string
		client func(*testing.B) redis.UniversalClient
		parts  int
	}{{"single/P=1", single, 1}, {"single/P=16", single, 16}, {"cluster3/P=16", cluster, 16}} {
		b.Run(c.name, func(b *testing.B) {
			cfg := testConfig("bench")
			cfg.Partitions = c.parts
			cfg.RenewInterval, cfg.RenewDeadline, cfg.TTL = time.Hour, 2*time.Hour, 3*time.Hour // no keep-alive round meanwhile
			cfg.DataLossGrace, cfg.DataLossProbe = 3*time.Hour, 90*time.Minute
			s := newSession(b, c.client(b), cfg)
			ctx := context.Background()
			if out := s.renewOnce(ctx, time.Now()); out.err != nil || out.view == nil {
				b.Fatalf("renew: %+v", out)
			}
			trips.Store(0)
			b.ResetTimer()
			for range b.N {
				if out := s.renewOnce(ctx, time.Now()); out.err != nil {
					b.Fatal(out.err)
				}
			}
			if n := trips.Load(); n > 0 {
				b.ReportMetric(float64(n)/float64(b.N), "node-round-trips/op")
			}
		})
	}
}

// tripCounter counts what a node client sends: a pipeline or a command is
// one round trip to that node.
type tripCounter struct{ n *atomic.Int64 }

func (h tripCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h tripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h tripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}

// TestResolvePartitions: the first resolver stores the count; a worker that
// asks for another is a ConfigError on Partitions; a Redis holding the
// single-tag layout of before partitions is a one-partition fleet, and asking
// it for more is refused the same way.
func TestResolvePartitions(t *testing.T) {
	_, client := startRedis(t)
	ctx := testCtx(t)
	k, err := ResolvePartitions(ctx, client, NewKeys("new"), 16)
	if err != nil || k.Partitions() != 16 {
		t.Fatalf("first resolve: %d partitions, %v", k.Partitions(), err)
	}
	if k, err := ResolvePartitions(ctx, client, NewKeys("new"), 0); err != nil || k.Partitions() != 16 {
		t.Fatalf("unset follows the stored count: %d, %v", k.Partitions(), err)
	}
	var ce *ConfigError
	if _, err := ResolvePartitions(ctx, client, NewKeys("new"), 4); !errors.As(err, &ce) || ce.Field != "Partitions" {
		t.Fatalf("a count that disagrees: %v, want a ConfigError on Partitions", err)
	}
	if k, err := ResolvePartitions(ctx, client, NewKeys("fresh"), 0); err != nil || k.Partitions() != keyspace.DefaultPartitions {
		t.Fatalf("a new fleet on one node without a setting: %d, %v", k.Partitions(), err)
	}
	legacy := NewKeys("old")
	if err := client.Set(ctx, legacy.Fence(0), "123", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := ResolvePartitions(ctx, client, legacy, 16); !errors.As(err, &ce) || ce.Field != "Partitions" {
		t.Fatalf("partitions on a single-tag fleet: %v, want a ConfigError on Partitions", err)
	}
	if k, err := ResolvePartitions(ctx, client, legacy, 0); err != nil || k.Partitions() != 1 {
		t.Fatalf("a single-tag fleet adopted: %d, %v; want 1", k.Partitions(), err)
	}
	if n, err := client.Get(ctx, legacy.PartitionCount()).Int(); err != nil || n != 1 {
		t.Fatalf("stored count of the adopted fleet: %d, %v", n, err)
	}
}

// TestNewFleetPartitionsOnCluster: a new fleet that sets no count gets
// keyspace.ClusterPartitions on Redis Cluster (a cluster client, also as
// redis.NewUniversalClient builds it), a stored count wins, and the
// single-tag layout of before partitions is still adopted as 1. A cluster
// client that routes over servers without cluster mode (Sentinel's
// NewFailoverClusterClient) is not Redis Cluster: 1.
func TestNewFleetPartitionsOnCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	cc := cl.Client(t)
	ctx := testCtx(t)
	uc := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: cl.Addrs()})
	t.Cleanup(func() { _ = uc.Close() })
	for name, c := range map[string]redis.UniversalClient{"cluster": cc, "universal": uc} {
		if k, err := ResolvePartitions(ctx, c, NewKeys("new-"+name), 0); err != nil || k.Partitions() != keyspace.ClusterPartitions {
			t.Errorf("a new fleet on Cluster through the %s client: %d partitions, %v; want %d",
				name, k.Partitions(), err, keyspace.ClusterPartitions)
		}
	}
	if _, err := ResolvePartitions(ctx, cc, NewKeys("set"), 2); err != nil {
		t.Fatal(err)
	}
	if k, err := ResolvePartitions(ctx, cc, NewKeys("set"), 0); err != nil || k.Partitions() != 2 {
		t.Errorf("a stored count on Cluster: %d partitions, %v; want 2", k.Partitions(), err)
	}
	legacy := NewKeys("old")
	if err := cc.XAdd(ctx, &redis.XAddArgs{Stream: legacy.Events(0), Values: []string{"seq", "1"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if k, err := ResolvePartitions(ctx, cc, legacy, 0); err != nil || k.Partitions() != 1 {
		t.Errorf("a single-tag fleet on Cluster: %d partitions, %v; want it adopted as 1", k.Partitions(), err)
	}
	sentinel := redis.NewFailoverClusterClient(&redis.FailoverOptions{MasterName: "m", SentinelAddrs: []string{"127.0.0.1:1"}})
	t.Cleanup(func() { _ = sentinel.Close() })
	if n := NewFleetPartitions(sentinel); n != keyspace.DefaultPartitions {
		t.Errorf("a Sentinel cluster client: %d partitions for a new fleet, want %d", n, keyspace.DefaultPartitions)
	}
}

// TestRunStartsWhatItWonBesideAGrace: a partition in its data-loss grace
// holds back only its own shards; the shards won in the same claim batch, in
// the other partitions, are started (Handler.Acquired), not left held and
// idle.
func TestRunStartsWhatItWonBesideAGrace(t *testing.T) {
	srv, direct := startRedis(t)
	cfg := testConfig("")
	cfg.Partitions = 2
	w := newWorld()
	r := startRunner(t, newClient(t, srv.Addr()), cfg, w)
	k := r.s.Keys()
	ctx := testCtx(t)
	endGraceAll(t, direct, k)
	if err := direct.Set(ctx, k.Grace(1), "1", time.Hour).Err(); err != nil { // partition 1 lost its data
		t.Fatal(err)
	}
	if _, err := r.s.SetLayoutIfAbsent(ctx, 4); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "partition 0's shards started", func() bool { return len(w.owners()) == 2 })
	for s := range w.owners() {
		if k.PartitionOf(s) != 0 {
			t.Fatalf("shard %v of the partition in grace started", s)
		}
	}
	if got := r.s.Waiting(); got.Reason != GraceReason {
		t.Fatalf("Waiting = %+v, want the grace", got)
	}
}
