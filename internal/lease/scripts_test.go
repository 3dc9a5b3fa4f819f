package lease

import (
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/redistest"
	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// P13: SCRIPT FLUSH mid-run (as after a failover or restart of the script
// cache) does not break anything: go-redis falls back from EVALSHA to EVAL.
func TestScriptFlushMidRun(t *testing.T) {
	_, client := startRedis(t)
	ctx := testCtx(t)
	a := newSession(t, client, testConfig(""))
	endGrace(t, client, "")
	l := claimOK(t, a, ShardKey{ID: 0, Count: 2})
	for range 3 {
		if err := client.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		before := a.view.Load()
		eventually(t, 2*time.Second, "a renew after SCRIPT FLUSH", func() bool { return a.view.Load() != before })
		if err := client.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if err := l.SaveState(ctx, gateway.ShardState{SessionID: "s", Sequence: 1}); err != nil {
			t.Fatalf("save after SCRIPT FLUSH: %v", err)
		}
		if ok, err := l.Valid(ctx); err != nil || !ok {
			t.Fatalf("valid after SCRIPT FLUSH: %v, %v", ok, err)
		}
	}
	if isClosed(a.Done()) {
		t.Fatalf("session ended: %v", a.Err())
	}
	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("release after SCRIPT FLUSH: %v", err)
	}
}

// P4: every mutating script may run twice (go-redis retries after a lost
// reply); the second run changes nothing and answers the same.
func TestScriptsIdempotent(t *testing.T) {
	_, client := startRedis(t)
	ctx := testCtx(t)
	a := newSession(t, client, testConfig(""))
	endGrace(t, client, "")
	k := a.Keys()
	key := ShardKey{ID: 1, Count: 4}
	a.mu.Lock()
	epoch := a.epoch
	a.mu.Unlock()
	claim := func() []any {
		res, err := claimScript.Run(ctx, client, []string{a.memKey, k.Epoch(), k.Grace(0), k.Fence(0), k.Lease(key), k.Session(key)},
			a.ID(), epoch, "req-1", 1, k.Prefix()).Slice()
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first, second := claim(), claim()
	r1, _ := parseRawClaim(first[0])
	r2, _ := parseRawClaim(second[0])
	if r1.status != "ok" || r1.token == 0 || r2 != r1 {
		t.Fatalf("claim replay: %+v then %+v", r1, r2)
	}
	fence, _ := client.Get(ctx, k.Fence(0)).Uint64()
	if fence != r1.token {
		t.Fatalf("fence %d after a replayed claim of token %d", fence, r1.token)
	}
	l := newLease(a, key, r1.token)
	st := gateway.ShardState{SessionID: "x", Sequence: 3, ResumeURL: "u"}
	for range 2 {
		if err := l.SaveState(ctx, st); err != nil {
			t.Fatalf("save replay: %v", err)
		}
	}
	for i, want := range []int64{1, 0} {
		res, err := releaseScript.Run(ctx, client, []string{k.Lease(key)}, a.ID(), r1.token).Int64Slice()
		if err != nil || res[0] != want {
			t.Fatalf("release run %d: %v, %v; want %d", i, res, err, want)
		}
	}
	// Re-assert twice: the same lease comes back once, with its token.
	for range 2 {
		res, err := partReassertScript.Run(ctx, client,
			[]string{a.memKey, k.Epoch(), k.Grace(0), k.Fence(0), k.Lease(key)},
			a.ID(), a.info, 1000, "e", 1000, 500, r1.token).Slice()
		if err != nil || len(res) != 2 || res[1] != int64(1) {
			t.Fatalf("reassert: %v, %v", res, err)
		}
	}
	if tok, _ := client.HGet(ctx, k.Lease(key), "token").Uint64(); tok != r1.token {
		t.Fatalf("reasserted token %d, want %d", tok, r1.token)
	}
}

// Redis Cluster, one partition (set: a new fleet there gets 16): every key
// of a fleet hashes to one slot (the prefix's hash tag), so multi-key scripts
// run; a session claims, stores and releases.
func TestCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	cc := cl.Client(t)
	ctx := testCtx(t)
	cfg := testConfig("fleet")
	cfg.Partitions = 1
	a := newSession(t, cc, cfg)
	b := newSession(t, cc, cfg)
	endGrace(t, cc, "fleet")
	key := ShardKey{ID: 2, Count: 3}
	la := claimOK(t, a, key)
	if _, err := b.Claim(ctx, key); err == nil {
		t.Fatal("two owners on a cluster")
	}
	if err := la.SaveState(ctx, gateway.ShardState{SessionID: "c", Sequence: 7}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetLayoutIfAbsent(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SplitShard(ctx, key, 2); err != nil {
		t.Fatal(err)
	}
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	lb := claimOK(t, b, key)
	if lb.Token() <= la.Token() {
		t.Fatalf("tokens %d then %d", la.Token(), lb.Token())
	}
	eventually(t, 2*time.Second, "renews on the cluster", func() bool { return len(a.Members()) == 2 })
	k := a.Keys()
	want, err := cc.ClusterKeySlot(ctx, k.Epoch()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{k.Member(a.ID()), k.Members(), k.MembersSince(), k.Lease(key), k.Session(key),
		k.Grace(0), k.Fence(0), k.Layout(), k.Events(0)} {
		if slot, _ := cc.ClusterKeySlot(ctx, name).Result(); slot != want {
			t.Errorf("key %q in slot %d, epoch in %d", name, slot, want)
		}
	}
}
