package lease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// world is the shards' side of a Run test: who runs which shard. Acquired
// checks that nobody else still runs it (their lease's Done open), which is
// invariant 1 of the design: never two owners.
type world struct {
	mu         sync.Mutex
	running    map[ShardKey]*Lease
	violations []string
	acquired   map[ShardKey][]gateway.ShardState // states handed to each acquirer
	revokes    map[string]int                    // per worker
	seq        int
	revokedAt  map[ShardKey]time.Time // planned moves in flight
	maxGap     time.Duration          // longest revoke-to-acquire gap seen
	moves      int                    // acquisitions that followed a revoke
}

func newWorld() *world {
	return &world{running: map[ShardKey]*Lease{}, acquired: map[ShardKey][]gateway.ShardState{},
		revokes: map[string]int{}, revokedAt: map[ShardKey]time.Time{}}
}

type worldHandler struct {
	w  *world
	id string
}

var _ Handler = (*worldHandler)(nil)

func (h *worldHandler) Acquired(_ context.Context, l *Lease, st gateway.ShardState) {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	if prev := h.w.running[l.Key()]; prev != nil && prev != l && !isClosed(prev.Done()) {
		h.w.violations = append(h.w.violations, fmt.Sprintf("%v acquired by %s while %s still runs it", l.Key(), h.id, prev.Owner()))
	}
	h.w.running[l.Key()] = l
	if at, ok := h.w.revokedAt[l.Key()]; ok {
		h.w.maxGap = max(h.w.maxGap, time.Since(at))
		h.w.moves++
		delete(h.w.revokedAt, l.Key())
	}
	h.w.acquired[l.Key()] = append(h.w.acquired[l.Key()], st)
}

func (h *worldHandler) Revoke(_ context.Context, l *Lease) (gateway.ShardState, error) {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	if h.w.running[l.Key()] == l {
		delete(h.w.running, l.Key())
	}
	h.w.revokes[h.id]++
	h.w.revokedAt[l.Key()] = time.Now()
	h.w.seq++
	return gateway.ShardState{SessionID: "sess-" + l.Key().String(), Sequence: h.w.seq, ResumeURL: "wss://r"}, nil
}

// owners maps each shard to the worker whose live lease runs it.
func (w *world) owners() map[ShardKey]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[ShardKey]string{}
	for k, l := range w.running {
		if !isClosed(l.Done()) {
			out[k] = l.Owner()
		}
	}
	return out
}

func (w *world) check(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, v := range w.violations {
		t.Error(v)
	}
}

// runner is one worker: a session and its Run loop, stopped when t ends.
type runner struct {
	s      *Session
	h      *worldHandler
	cancel context.CancelFunc
	done   chan error
}

func startRunner(t testing.TB, client redis.UniversalClient, cfg Config, w *world) *runner {
	t.Helper()
	s := newSession(t, client, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{s: s, h: &worldHandler{w: w, id: s.ID()}, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx, r.h) }()
	t.Cleanup(r.stop)
	return r
}

// stop ends Run and waits for it (idempotent).
func (r *runner) stop() {
	r.cancel()
	select {
	case <-r.done:
	default:
		<-r.done
	}
	r.done <- nil // leave a value for a second stop
}

// waitBalanced waits until every shard of want is run by a live lease and
// the owners match want exactly.
func waitBalanced(t *testing.T, w *world, within time.Duration, what string, want func(map[ShardKey]string) bool) {
	t.Helper()
	eventually(t, within, what, func() bool { return want(w.owners()) })
}

func countBy(owners map[ShardKey]string) map[string]int {
	c := map[string]int{}
	for _, o := range owners {
		c[o]++
	}
	return c
}

// P12 and P5: joins, a graceful leave and a crash. The fleet converges to
// Assign's balance, planned moves hand the session state over, and no shard
// ever has two live owners.
func TestRunJoinLeaveCrash(t *testing.T) {
	srv, direct := startRedis(t)
	w := newWorld()
	cfg := testConfig("")
	const S = 12
	r1 := startRunner(t, newClient(t, srv.Addr()), cfg, w)
	endGrace(t, direct, "")
	if _, err := r1.s.SetLayoutIfAbsent(testCtx(t), S); err != nil {
		t.Fatal(err)
	}
	waitBalanced(t, w, 5*time.Second, "r1 runs every shard", func(o map[ShardKey]string) bool {
		return len(o) == S && countBy(o)[r1.s.ID()] == S
	})

	r2 := startRunner(t, newClient(t, srv.Addr()), cfg, w)
	r3 := startRunner(t, newClient(t, srv.Addr()), cfg, w)
	want3 := Assign(shardsOf(S), []string{r1.s.ID(), r2.s.ID(), r3.s.ID()})
	waitBalanced(t, w, 5*time.Second, "three members converge to Assign", func(o map[ShardKey]string) bool {
		return len(o) == S && fmt.Sprint(o) == fmt.Sprint(want3)
	})
	w.check(t)
	// Shards that moved were resumed from the state the old owner handed over.
	w.mu.Lock()
	for k, owner := range want3 {
		if owner == r1.s.ID() {
			continue
		}
		sts := w.acquired[k]
		if last := sts[len(sts)-1]; !last.Resumable() || last.SessionID != "sess-"+k.String() {
			t.Errorf("%v moved to %s without the handed-over state: %+v", k, owner, last)
		}
	}
	w.mu.Unlock()

	// Graceful leave of r2: drain, close; its shards move without a TTL wait.
	r2.stop()
	if err := r2.s.Drain(testCtx(t), r2.h); err != nil {
		t.Fatal(err)
	}
	if err := r2.s.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	left := time.Now()
	want2 := Assign(shardsOf(S), []string{r1.s.ID(), r3.s.ID()})
	waitBalanced(t, w, 5*time.Second, "two members converge after a graceful leave", func(o map[ShardKey]string) bool {
		return len(o) == S && fmt.Sprint(o) == fmt.Sprint(want2)
	})
	t.Logf("graceful leave handed over in %v (TTL %v)", time.Since(left), cfg.TTL)

	// Crash of r3: its shards are claimed by r1 after the TTL.
	r3.stop()
	r3.s.Orphan()
	waitBalanced(t, w, 5*time.Second, "r1 takes over after a crash", func(o map[ShardKey]string) bool {
		return len(o) == S && countBy(o)[r1.s.ID()] == S
	})
	w.check(t)
}

// A member that comes and goes faster than JoinGrace never makes anyone
// revoke (hysteresis).
func TestRunFlappingMemberDoesNotChurn(t *testing.T) {
	srv, direct := startRedis(t)
	w := newWorld()
	cfg := testConfig("")
	cfg.JoinGrace = 400 * time.Millisecond
	r1 := startRunner(t, newClient(t, srv.Addr()), cfg, w)
	endGrace(t, direct, "")
	if _, err := r1.s.SetLayoutIfAbsent(testCtx(t), 8); err != nil {
		t.Fatal(err)
	}
	waitBalanced(t, w, 5*time.Second, "r1 runs every shard", func(o map[ShardKey]string) bool { return len(o) == 8 })
	client := newClient(t, srv.Addr())
	for range 5 {
		flap, err := NewSession(testCtx(t), client, cfg)
		if err != nil {
			t.Fatal(err)
		}
		before := r1.s.view.Load()
		eventually(t, 2*time.Second, "r1 sees the flapping member", func() bool {
			v := r1.s.view.Load()
			return v != before && len(v.members) == 2
		})
		if err := flap.Close(testCtx(t)); err != nil {
			t.Fatal(err)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := w.revokes[r1.s.ID()]; n != 0 {
		t.Fatalf("r1 revoked %d shards for a member that never stayed %v", n, cfg.JoinGrace)
	}
}

// Leases follow the layout: after SplitShard the old key is revoked and its
// children are claimed.
func TestRunFollowsSplit(t *testing.T) {
	srv, direct := startRedis(t)
	w := newWorld()
	r1 := startRunner(t, newClient(t, srv.Addr()), testConfig(""), w)
	r2 := startRunner(t, newClient(t, srv.Addr()), testConfig(""), w)
	endGrace(t, direct, "")
	ctx := testCtx(t)
	if _, err := r1.s.SetLayoutIfAbsent(ctx, 2); err != nil {
		t.Fatal(err)
	}
	waitBalanced(t, w, 5*time.Second, "both shards run", func(o map[ShardKey]string) bool { return len(o) == 2 })
	l, err := r2.s.SplitShard(ctx, ShardKey{ID: 0, Count: 2}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := r1.s.SplitShard(ctx, ShardKey{ID: 0, Count: 2}, 2); err != nil || again.Version != l.Version {
		t.Fatalf("repeated split: %+v, %v (first %+v)", again, err, l)
	}
	want := map[ShardKey]bool{{ID: 1, Count: 2}: true, {ID: 0, Count: 4}: true, {ID: 2, Count: 4}: true}
	waitBalanced(t, w, 5*time.Second, "leases follow the split", func(o map[ShardKey]string) bool {
		if len(o) != len(want) {
			return false
		}
		for k := range o {
			if !want[k] {
				return false
			}
		}
		return true
	})
	// The children may start before the old key's release lands (different
	// keys); the old lease must go.
	eventually(t, 3*time.Second, "the split shard's lease and session are gone", func() bool {
		n, err := direct.Exists(ctx, r1.s.Keys().Lease(ShardKey{ID: 0, Count: 2}), r1.s.Keys().Session(ShardKey{ID: 0, Count: 2})).Result()
		return err == nil && n == 0
	})
	w.check(t)
}

func TestRunReturnsWhenSessionEnds(t *testing.T) {
	_, client := startRedis(t)
	s := newSession(t, client, testConfig(""))
	errc := make(chan error, 1)
	go func() { errc <- s.Run(context.Background(), &worldHandler{w: newWorld()}) }()
	s.Orphan()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrSessionDone) {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the session ended")
	}
}

// A worker restarted with the same WorkerID finds leases of its previous
// life in Redis; its new member key would make them look valid, so Run
// sweeps them and the shards assigned elsewhere are not stuck.
func TestRunSweepsLeasesOfEarlierIncarnation(t *testing.T) {
	srv, direct := startRedis(t)
	cfg := testConfig("")
	cfg.WorkerID = "fixed-id"
	old := newSession(t, newClient(t, srv.Addr()), cfg)
	endGrace(t, direct, "")
	ctx := testCtx(t)
	for _, k := range shardsOf(6) {
		claimOK(t, old, k)
	}
	old.Orphan() // crash: the leases stay in Redis
	eventually(t, 3*time.Second, "the old member key expires", func() bool {
		n, err := direct.Exists(ctx, old.Keys().Member("fixed-id")).Result()
		return err == nil && n == 0
	})
	w := newWorld()
	r1 := startRunner(t, newClient(t, srv.Addr()), cfg, w) // same id, new life
	r2 := startRunner(t, newClient(t, srv.Addr()), testConfig(""), w)
	// Both count each other before there is a layout, so neither claims the
	// other's shards first (which would hide the stale leases).
	eventually(t, 3*time.Second, "both members count each other", func() bool {
		v1, v2 := r1.s.view.Load(), r2.s.view.Load()
		return v1 != nil && v2 != nil && len(v1.members) == 2 && len(v2.members) == 2 &&
			v1.now.Sub(v1.members[0].Since) > cfg.JoinGrace && v1.now.Sub(v1.members[1].Since) > cfg.JoinGrace &&
			v2.now.Sub(v2.members[0].Since) > cfg.JoinGrace && v2.now.Sub(v2.members[1].Since) > cfg.JoinGrace
	})
	if _, err := r1.s.SetLayoutIfAbsent(ctx, 6); err != nil {
		t.Fatal(err)
	}
	want := Assign(shardsOf(6), []string{r1.s.ID(), r2.s.ID()})
	waitBalanced(t, w, 5*time.Second, "both members run their shards", func(o map[ShardKey]string) bool {
		return fmt.Sprint(o) == fmt.Sprint(want)
	})
	w.check(t)
}

// Workers that start a new fleet together split its shards at the end of the
// probe, without a move: the JoinGrace that damps a flapping member does not
// make each of them claim every shard first.
func TestRunNewFleetSplitsWithoutMoves(t *testing.T) {
	srv, _ := startRedis(t)
	cfg := testConfig("")
	cfg.JoinGrace = time.Minute // far beyond the test: only the probe rule can count the others
	cfg.DataLossProbe = 4 * cfg.RenewInterval
	w := newWorld()
	var runners []*runner
	for range 3 {
		runners = append(runners, startRunner(t, newClient(t, srv.Addr()), cfg, w))
	}
	if _, err := runners[0].s.SetLayoutIfAbsent(testCtx(t), 12); err != nil {
		t.Fatal(err)
	}
	waitBalanced(t, w, 10*time.Second, "every shard run, by all three workers", func(o map[ShardKey]string) bool {
		return len(o) == 12 && len(countBy(o)) == 3
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.revokes); n != 0 || len(w.violations) != 0 {
		t.Fatalf("revokes %v, violations %v: the new fleet moved shards", w.revokes, w.violations)
	}
}
