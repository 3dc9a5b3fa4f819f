package lease

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/internal/redistest"
	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// P4, retry idempotency under a real retry: the proxy lets a script's request
// reach Redis and loses its reply, go-redis runs the script again on a new
// connection, and the caller's answer must still match the state in Redis,
// with nothing written twice that matters (TestScriptsIdempotent replays the
// scripts by hand; these tests make go-redis do it).

// retryRig is a redis-server, a fault proxy in front of it, and a client
// through the proxy that go-redis retries on (MaxRetries 2). direct reaches
// Redis without the proxy, for set-up and for reading the state.
type retryRig struct {
	srv    *redistest.Server
	direct *redis.Client
	proxy  *faultProxy
	client *redis.Client
}

func newRetryRig(t *testing.T) *retryRig {
	t.Helper()
	srv, direct := startRedis(t)
	r := &retryRig{srv: srv, direct: direct, proxy: newFaultProxy(t, srv.Addr())}
	// A connection reset on read is a net.Error that is not a timeout:
	// go-redis's shouldRetry retries it (an EOF too), whatever
	// ContextTimeoutEnabled says.
	r.client = redis.NewClient(&redis.Options{Addr: r.proxy.Addr(), MaxRetries: 2, ContextTimeoutEnabled: true,
		DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
	t.Cleanup(func() { _ = r.client.Close() })
	// A pooled connection, so that the first reply under test is not a HELLO.
	if err := r.client.Ping(testCtx(t)).Err(); err != nil {
		t.Fatalf("ping through the proxy: %v", err)
	}
	return r
}

// quietConfig renews every 10 s, so that no keep-alive renew runs during a
// test: the proxied client then carries only the calls under test, and the
// script counts below are exact.
func quietConfig() Config {
	c := testConfig("")
	c.TTL = 30 * time.Second
	c.RenewInterval = 10 * time.Second
	c.RenewDeadline = 20 * time.Second
	c.DataLossGrace = 50 * time.Second
	return c
}

// lostReply runs op with the reply to the next run of script lost and
// checks that go-redis replayed it (see redistest.Server.LostReply).
func (r *retryRig) lostReply(t *testing.T, script redistest.LoadableScript, op func() error) map[string]int64 {
	t.Helper()
	return r.srv.LostReply(t, r.proxy, script, op)
}

// leaseState is the lease hash of key as Redis has it.
func leaseState(t *testing.T, c *redis.Client, k Keys, key ShardKey) map[string]string {
	t.Helper()
	h, err := c.HGetAll(testCtx(t), k.Lease(key)).Result()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func tokenString(tok uint64) string { return strconv.FormatUint(tok, 10) }

func TestClaimRetriedAfterLostReply(t *testing.T) {
	r := newRetryRig(t)
	a := newSession(t, r.client, quietConfig())
	endGrace(t, r.direct, "")
	ctx := testCtx(t)
	k, key := a.Keys(), ShardKey{ID: 2, Count: 4}

	var l *Lease
	ran := r.lostReply(t, claimScript, func() (err error) {
		l, err = a.Claim(ctx, key)
		return err
	})
	// The retry found its own claim (same request id) and answered it: the
	// lease is held once, under the token the caller got, and no second
	// token was issued.
	if h := leaseState(t, r.direct, k, key); h["owner"] != a.ID() || h["token"] != tokenString(l.Token()) {
		t.Fatalf("lease in Redis %v; the caller holds token %d", h, l.Token())
	}
	if fence, err := r.direct.Get(ctx, k.Fence(0)).Uint64(); err != nil || fence != l.Token() {
		t.Fatalf("last issued token %d (%v); the caller holds %d: the retry issued another", fence, err, l.Token())
	}
	if ran["hset"] != 1 || ran["set"] != 1 {
		t.Fatalf("lease written %d times and fence %d times, want once each (ran %v)", ran["hset"], ran["set"], ran)
	}
	if a.Lease(key) != l {
		t.Fatal("the session does not hold the lease it returned")
	}
	if ok, err := l.Valid(ctx); err != nil || !ok {
		t.Fatalf("Valid = %v, %v", ok, err)
	}
	// Tokens stay monotonic: the next owner's is larger.
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	b := newSession(t, r.direct, quietConfig())
	if lb := claimOK(t, b, key); lb.Token() <= l.Token() {
		t.Fatalf("next owner's token %d is not above %d", lb.Token(), l.Token())
	}
}

func TestRenewRetriedAfterLostReply(t *testing.T) {
	r := newRetryRig(t)
	cfg := quietConfig()
	a := newSession(t, r.client, cfg)
	endGrace(t, r.direct, "")
	ctx := testCtx(t)
	k, key := a.Keys(), ShardKey{ID: 1, Count: 2}
	l := claimOK(t, a, key)
	held := leaseState(t, r.direct, k, key)

	// The keep-alive's next renew is 10 s away: this is the only renew.
	var out renewOutcome
	if err := partRenewScript.Load(ctx, r.direct).Err(); err != nil {
		t.Fatal(err)
	}
	// The pipeline of the partition's renew and the fleet's, twice.
	ran := r.srv.LostPipelineReply(t, r.proxy, renewScript, 4, func() error {
		out = a.renewOnce(ctx, time.Now())
		return out.err
	})
	if out.gone || out.view == nil {
		t.Fatalf("renew outcome %+v, want a view", out)
	}
	if m := out.view.members; len(m) != 1 || m[0].ID != a.ID() {
		t.Fatalf("renew saw members %v, want just %s", m, a.ID())
	}
	// Both runs of the pipeline (the partition's renew, then the fleet's:
	// with one partition both PEXPIRE the one member key) set absolute values
	// (expiry, score): the lease is unchanged and still valid, the member key
	// is renewed once over.
	if ran["pexpire"] != 4 {
		t.Fatalf("PEXPIRE ran %d times, want 4 (ran %v)", ran["pexpire"], ran)
	}
	if h := leaseState(t, r.direct, k, key); !reflect.DeepEqual(h, held) {
		t.Fatalf("lease changed by a renew: %v, was %v", h, held)
	}
	if ttl, err := r.direct.PTTL(ctx, k.Member(a.ID())).Result(); err != nil || ttl <= 0 || ttl > cfg.TTL {
		t.Fatalf("member key PTTL %v (%v), want in (0, %v]", ttl, err, cfg.TTL)
	}
	if n, err := r.direct.ZCard(ctx, k.Members()).Result(); err != nil || n != 1 {
		t.Fatalf("%d members (%v), want 1", n, err)
	}
	if ok, err := l.Valid(ctx); err != nil || !ok {
		t.Fatalf("Valid after the renew = %v, %v", ok, err)
	}
}

func TestReleaseRetriedAfterLostReply(t *testing.T) {
	r := newRetryRig(t)
	a := newSession(t, r.client, quietConfig())
	endGrace(t, r.direct, "")
	ctx := testCtx(t)
	k, key := a.Keys(), ShardKey{ID: 0, Count: 3}
	l := claimOK(t, a, key)

	// The first run deletes the lease; the retry finds it gone (0), which
	// Release takes as done, not as fenced.
	ran := r.lostReply(t, releaseScript, func() error { return l.Release(ctx) })
	if ran["del"] != 1 {
		t.Fatalf("DEL ran %d times, want 1 (ran %v)", ran["del"], ran)
	}
	if n, err := r.direct.Exists(ctx, k.Lease(key)).Result(); err != nil || n != 0 {
		t.Fatalf("lease key still exists (%d, %v)", n, err)
	}
	if !errors.Is(l.Err(), ErrReleased) || a.Lease(key) != nil {
		t.Fatalf("released lease: Err %v, session still holds it: %v", l.Err(), a.Lease(key) != nil)
	}
	a.mu.Lock()
	pending := len(a.unreleased)
	a.mu.Unlock()
	if pending != 0 {
		t.Fatalf("%d leases queued to release again; the release succeeded", pending)
	}
	b := newSession(t, r.direct, quietConfig())
	if lb := claimOK(t, b, key); lb.Token() <= l.Token() {
		t.Fatalf("next owner's token %d is not above %d", lb.Token(), l.Token())
	}
}

func TestSessionStoreRetriedAfterLostReply(t *testing.T) {
	r := newRetryRig(t)
	a := newSession(t, r.client, quietConfig())
	endGrace(t, r.direct, "")
	ctx := testCtx(t)
	k, key := a.Keys(), ShardKey{ID: 5, Count: 8}
	l := claimOK(t, a, key)

	st := gateway.ShardState{SessionID: "sess-1", Sequence: 42, ResumeURL: "wss://resume.example"}
	ran := r.lostReply(t, saveStateScript, func() error { return l.SaveState(ctx, st) })
	if ran["hset"] != 2 {
		t.Fatalf("HSET ran %d times, want 2: both runs write the same values (ran %v)", ran["hset"], ran)
	}
	rec, err := r.direct.HGetAll(ctx, k.Session(key)).Result()
	want := map[string]string{"session_id": "sess-1", "seq": "42", "resume_url": "wss://resume.example",
		"token": tokenString(l.Token())}
	if err != nil || !reflect.DeepEqual(rec, want) {
		t.Fatalf("session record %v (%v), want %v", rec, err, want)
	}
	if got, err := LoadState(ctx, r.direct, k, key); err != nil || got != st {
		t.Fatalf("LoadState = %+v, %v; want %+v", got, err, st)
	}

	r.lostReply(t, clearStateScript, func() error { return l.ClearState(ctx) })
	if n, err := r.direct.Exists(ctx, k.Session(key)).Result(); err != nil || n != 0 {
		t.Fatalf("session record still exists (%d, %v)", n, err)
	}
	if h := leaseState(t, r.direct, k, key); h["token"] != tokenString(l.Token()) {
		t.Fatalf("lease %v after the session store calls; token %d", h, l.Token())
	}
}

// register: the retry finds the member key it wrote itself, which must not
// read as another live session with the same worker ID (ErrMemberExists).
func TestRegisterRetriedAfterLostReply(t *testing.T) {
	r := newRetryRig(t)
	ctx := testCtx(t)
	var s *Session
	for _, sc := range []*keyspace.Script{partitionsScript, partRegisterScript} {
		if err := sc.Load(ctx, r.direct).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// The partition count, then the pipeline of the partition's register and
	// the fleet's, twice.
	r.srv.LostPipelineReply(t, r.proxy, registerScript, 5, func() (err error) {
		s, err = NewSession(ctx, r.client, quietConfig())
		if err == nil {
			t.Cleanup(func() {
				cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				_ = s.Close(cctx)
			})
		}
		return err
	})
	k := s.Keys()
	if info, err := r.direct.Get(ctx, k.Member(s.ID())).Result(); err != nil || info != s.info {
		t.Fatalf("member key %q (%v), want %q", info, err, s.info)
	}
	epoch, err := r.direct.Get(ctx, k.Epoch()).Result()
	s.mu.Lock()
	known := s.epoch
	s.mu.Unlock()
	if err != nil || epoch != known {
		t.Fatalf("epoch in Redis %q (%v), the session knows %q", epoch, err, known)
	}
	if n, err := r.direct.ZCard(ctx, k.Members()).Result(); err != nil || n != 1 {
		t.Fatalf("%d members (%v), want 1", n, err)
	}
}

// reassert after data loss: the retry finds the leases it re-created with
// the same tokens and keeps them; nothing is lost or re-issued.
func TestReassertRetriedAfterLostReply(t *testing.T) {
	r := newRetryRig(t)
	a := newSession(t, r.client, quietConfig())
	endGrace(t, r.direct, "")
	ctx := testCtx(t)
	k, key := a.Keys(), ShardKey{ID: 3, Count: 4}
	l := claimOK(t, a, key)
	if err := r.direct.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	ran := r.lostReply(t, partReassertScript, func() error { return a.reassertPartition(ctx, 0) })
	if ran["hset"] != 1 {
		t.Fatalf("lease re-created %d times, want once (ran %v)", ran["hset"], ran)
	}
	if l.Err() != nil || a.Lease(key) != l {
		t.Fatalf("lease lost by a retried re-assertion: %v", l.Err())
	}
	if h := leaseState(t, r.direct, k, key); h["owner"] != a.ID() || h["token"] != tokenString(l.Token()) {
		t.Fatalf("lease in Redis %v; the caller holds token %d", h, l.Token())
	}
	if fence, err := r.direct.Get(ctx, k.Fence(0)).Uint64(); err != nil || fence != l.Token() {
		t.Fatalf("fence %d (%v) after re-asserting token %d", fence, err, l.Token())
	}
	if ok, err := l.Valid(ctx); err != nil || !ok {
		t.Fatalf("Valid after the re-assertion = %v, %v", ok, err)
	}
}

// The layout scripts: SetLayoutIfAbsent answers the stored layout either
// way. The CAS of SplitShard answers 0 (version conflict) on its replay,
// since the first run moved the version; SplitShard then reloads, finds the
// split done, and returns what it stored: one version step, same answer.
func TestLayoutWritesRetriedAfterLostReply(t *testing.T) {
	r := newRetryRig(t)
	a := newSession(t, r.client, quietConfig())
	ctx := testCtx(t)
	var set Layout
	r.lostReply(t, layoutInitScript, func() (err error) {
		set, err = a.SetLayoutIfAbsent(ctx, 2)
		return err
	})
	if set.Version != 1 || set.Count != 2 {
		t.Fatalf("SetLayoutIfAbsent = %+v, want version 1 of 2 shards", set)
	}
	var split Layout
	r.lostReply(t, layoutCASScript, func() (err error) {
		split, err = a.SplitShard(ctx, ShardKey{ID: 0, Count: 2}, 2)
		return err
	})
	stored, err := LoadLayout(ctx, r.direct, a.Keys())
	if err != nil {
		t.Fatal(err)
	}
	if split.Version != 2 || !reflect.DeepEqual(stored, split) {
		t.Fatalf("SplitShard returned %+v; Redis has %+v; want version 2 in both", split, stored)
	}
}
