package lease

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

func TestClaimReleaseValid(t *testing.T) {
	_, client := startRedis(t)
	ctx := testCtx(t)
	a := newSession(t, client, testConfig(""))
	b := newSession(t, client, testConfig(""))
	endGrace(t, client, "")
	key := ShardKey{ID: 3, Count: 8}

	la := claimOK(t, a, key)
	if again := claimOK(t, a, key); again != la {
		t.Fatalf("second claim by the holder returned a new lease")
	}
	if ok, err := la.Valid(ctx); err != nil || !ok {
		t.Fatalf("Valid = %v, %v; want true", ok, err)
	}
	_, err := b.Claim(ctx, key)
	var held *HeldError
	if !errors.As(err, &held) || held.Owner != a.ID() || !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("claim of a held lease: got %v, want *HeldError owned by %s", err, a.ID())
	}
	if err := la.Release(ctx); err != nil {
		t.Fatalf("release: %v", err)
	}
	if !isClosed(la.Done()) || !errors.Is(la.Err(), ErrReleased) {
		t.Fatalf("released lease: Done closed %v, Err %v", isClosed(la.Done()), la.Err())
	}
	if ok, _ := la.Valid(ctx); ok {
		t.Fatal("released lease still valid")
	}
	lb := claimOK(t, b, key)
	if lb.Token() <= la.Token() {
		t.Fatalf("token did not grow: %d then %d", la.Token(), lb.Token())
	}
	if err := la.Release(ctx); err != nil && !errors.Is(err, ErrFenced) {
		t.Fatalf("stale release: %v", err)
	}
	if ok, err := lb.Valid(ctx); err != nil || !ok {
		t.Fatalf("successor's lease after a stale release: Valid = %v, %v", ok, err)
	}
}

// A stale holder (its lease expired and was taken over) cannot renew,
// release or write the session store; the successor's lease and state stay.
func TestStaleHolderIsFenced(t *testing.T) {
	_, client := startRedis(t)
	ctx := testCtx(t)
	a := newSession(t, client, testConfig(""))
	b := newSession(t, client, testConfig(""))
	endGrace(t, client, "")
	key := ShardKey{ID: 0, Count: 1}
	la := claimOK(t, a, key)
	if err := la.SaveState(ctx, gateway.ShardState{SessionID: "old", Sequence: 5, ResumeURL: "wss://a"}); err != nil {
		t.Fatalf("save: %v", err)
	}
	// a's membership expires (as after a long pause); b takes over.
	if err := client.Del(ctx, a.Keys().Member(a.ID())).Err(); err != nil {
		t.Fatal(err)
	}
	lb := claimOK(t, b, key)
	if st, err := b.LoadState(ctx, key); err != nil || st.SessionID != "old" || st.Sequence != 5 {
		t.Fatalf("successor reads %+v, %v", st, err)
	}
	if err := lb.SaveState(ctx, gateway.ShardState{SessionID: "new", Sequence: 9, ResumeURL: "wss://b"}); err != nil {
		t.Fatalf("successor save: %v", err)
	}

	// The stale lease object has not been told yet (its session would find out
	// on its next renew); every write it tries is rejected by Redis.
	staleLease := newLease(a, key, la.Token())
	if err := staleLease.SaveState(ctx, gateway.ShardState{SessionID: "stale", Sequence: 99}); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale save: got %v, want ErrFenced", err)
	}
	if err := staleLease.ClearState(ctx); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale clear: got %v, want ErrFenced", err)
	}
	if err := a.releaseBatch(ctx, []*Lease{staleLease}); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale release: got %v, want ErrFenced", err)
	}
	// Renew: a's keep-alive finds its member key gone and ends the session.
	eventually(t, 2*time.Second, "stale session ends", func() bool { return isClosed(a.Done()) })
	if !errors.Is(a.Err(), ErrExpired) || !errors.Is(la.Err(), ErrSessionDone) {
		t.Fatalf("session err %v, lease err %v", a.Err(), la.Err())
	}
	if n, err := client.Exists(ctx, a.Keys().Member(a.ID())).Result(); err != nil || n != 0 {
		t.Fatalf("stale session re-created its member key: %d, %v", n, err)
	}
	if ok, err := lb.Valid(ctx); err != nil || !ok {
		t.Fatalf("successor lease: Valid = %v, %v", ok, err)
	}
	if st, _ := b.LoadState(ctx, key); st.SessionID != "new" || st.Sequence != 9 {
		t.Fatalf("state after stale writes: %+v", st)
	}
}

func TestSessionStoreRoundTrip(t *testing.T) {
	_, client := startRedis(t)
	ctx := testCtx(t)
	a := newSession(t, client, testConfig("app"))
	endGrace(t, client, "app")
	key := ShardKey{ID: 1, Count: 2}
	if st, err := a.LoadState(ctx, key); err != nil || st != (gateway.ShardState{}) {
		t.Fatalf("empty store: %+v, %v", st, err)
	}
	l := claimOK(t, a, key)
	want := gateway.ShardState{SessionID: "s1", Sequence: 42, ResumeURL: "wss://resume"}
	if err := l.SaveState(ctx, want); err != nil {
		t.Fatal(err)
	}
	if got, err := a.LoadState(ctx, key); err != nil || got != want {
		t.Fatalf("load: %+v, %v; want %+v", got, err, want)
	}
	tok, _ := client.HGet(ctx, a.Keys().Session(key), "token").Result()
	if tok != strconv.FormatUint(l.Token(), 10) {
		t.Fatalf("session token field %q, lease token %d", tok, l.Token())
	}
	if err := l.ClearState(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.LoadState(ctx, key); got.Resumable() {
		t.Fatalf("cleared state still resumable: %+v", got)
	}
	// The next owner gets the saved state with its claim.
	if err := l.SaveState(ctx, want); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := a.claimBatch(ctx, []ShardKey{key})
	if err != nil || res[0].err != nil || res[0].state != want {
		t.Fatalf("claim returns state %+v, %v / %v", res[0].state, err, res[0].err)
	}
}

func TestCloseReleasesAndOrphanDoesNot(t *testing.T) {
	_, client := startRedis(t)
	ctx := testCtx(t)
	a := newSession(t, client, testConfig(""))
	endGrace(t, client, "")
	la := claimOK(t, a, ShardKey{ID: 0, Count: 2})
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if !isClosed(la.Done()) || !isClosed(a.Done()) || !errors.Is(a.Err(), ErrClosed) {
		t.Fatalf("after Close: lease done %v, session done %v err %v", isClosed(la.Done()), isClosed(a.Done()), a.Err())
	}
	if n, _ := client.Exists(ctx, a.Keys().Member(a.ID()), a.Keys().Lease(la.Key())).Result(); n != 0 {
		t.Fatalf("Close left %d keys", n)
	}
	if _, err := a.Claim(ctx, ShardKey{ID: 1, Count: 2}); !errors.Is(err, ErrSessionDone) {
		t.Fatalf("claim on a closed session: %v", err)
	}

	b := newSession(t, client, testConfig(""))
	lb := claimOK(t, b, ShardKey{ID: 1, Count: 2})
	b.Orphan()
	if !isClosed(lb.Done()) {
		t.Fatal("Orphan left the lease's Done open")
	}
	if n, _ := client.Exists(ctx, b.Keys().Member(b.ID()), b.Keys().Lease(lb.Key())).Result(); n != 2 {
		t.Fatalf("Orphan removed keys: %d of 2 left", n)
	}
}

func TestWorkerIDInUse(t *testing.T) {
	_, client := startRedis(t)
	cfg := testConfig("")
	cfg.WorkerID = "w1"
	newSession(t, client, cfg)
	if _, err := NewSession(testCtx(t), client, cfg); !errors.Is(err, ErrMemberExists) {
		t.Fatalf("second session with the same id: %v", err)
	}
}

// TestRefusedRegisterLeavesNothing: a register refused in one partition (a
// live session's mirror there) takes back what it wrote elsewhere, so the
// worker's next attempt succeeds as soon as that mirror is gone, not a TTL
// after its own refused attempt.
func TestRefusedRegisterLeavesNothing(t *testing.T) {
	_, client := startRedis(t)
	ctx := testCtx(t)
	cfg := testConfig("")
	cfg.WorkerID, cfg.Partitions = "w1", 4
	keys, err := NewKeys(cfg.Prefix).WithPartitions(cfg.Partitions)
	if err != nil {
		t.Fatal(err)
	}
	live := keys.PartitionMember(2, "w1")
	if err := client.Set(ctx, live, `{"id":"w1","started_at":"2026-01-01T00:00:00Z"}`, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSession(ctx, client, cfg); !errors.Is(err, ErrMemberExists) {
		t.Fatalf("register beside a live mirror: %v, want ErrMemberExists", err)
	}
	left := []string{keys.Member("w1")}
	for p := range keys.Partitions() {
		left = append(left, keys.PartitionMember(p, "w1"))
	}
	if n, _ := client.Exists(ctx, left...).Result(); n != 1 {
		t.Errorf("%d member keys after the refused register, want 1 (the live mirror)", n)
	}
	for _, set := range []string{keys.Members(), keys.MembersSince()} {
		if err := client.ZScore(ctx, set, "w1").Err(); !errors.Is(err, redis.Nil) {
			t.Errorf("%s lists w1 after the refused register (%v)", set, err)
		}
	}
	if err := client.Del(ctx, live).Err(); err != nil {
		t.Fatal(err)
	}
	newSession(t, client, cfg)
}

// Two fleets with different prefixes share a Redis and never see each other.
func TestPrefixesIsolated(t *testing.T) {
	_, client := startRedis(t)
	ctx := testCtx(t)
	a := newSession(t, client, testConfig("fleet-a"))
	b := newSession(t, client, testConfig("{fleet-b}:"))
	endGrace(t, client, "fleet-a")
	endGrace(t, client, "{fleet-b}:")
	key := ShardKey{ID: 0, Count: 1}
	claimOK(t, a, key)
	claimOK(t, b, key) // same shard, other fleet: no conflict
	keys, err := client.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "{fleet-a}:") && !strings.HasPrefix(k, "{fleet-b}:") {
			t.Errorf("key %q outside both prefixes", k)
		}
	}
	eventually(t, 2*time.Second, "both fleets see one member", func() bool {
		return len(a.Members()) == 1 && len(b.Members()) == 1
	})
}

func TestClaimRejectsBadKey(t *testing.T) {
	_, client := startRedis(t)
	a := newSession(t, client, testConfig(""))
	for _, k := range []ShardKey{{ID: -1, Count: 1}, {ID: 1, Count: 1}, {ID: 0, Count: 0}, {ID: 0, Count: MaxShardCount + 1}} {
		if _, err := a.Claim(testCtx(t), k); !errors.Is(err, ErrInvalidShard) {
			t.Errorf("claim %v: got %v, want ErrInvalidShard", k, err)
		}
	}
}

// A Release that cannot reach Redis is not forgotten: the lease is tied to
// the live member key and would block the shard, so Close releases it again.
func TestReleaseRetriedAfterFailure(t *testing.T) {
	srv, direct := startRedis(t)
	proxy := newFaultProxy(t, srv.Addr())
	a := newSession(t, newClient(t, proxy.Addr()), testConfig(""))
	endGrace(t, direct, "")
	key := ShardKey{ID: 0, Count: 1}
	l := claimOK(t, a, key)
	proxy.Set(faultBlackhole)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err := l.Release(ctx)
	cancel()
	proxy.Set(faultPass)
	if err == nil {
		t.Fatal("release through a black hole succeeded")
	}
	if n, _ := direct.Exists(testCtx(t), a.Keys().Lease(key)).Result(); n != 1 {
		t.Fatal("lease gone although the release never arrived")
	}
	if err := a.Close(testCtx(t)); err != nil {
		t.Fatalf("close: %v", err)
	}
	if n, _ := direct.Exists(testCtx(t), a.Keys().Lease(key)).Result(); n != 0 {
		t.Fatal("Close did not release the lease whose Release failed")
	}
}
