package lease

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/redistest"
)

// P6: after Redis loses its data (restart without persistence, FLUSHALL),
// the epoch change is detected, the holder re-asserts its leases with their
// old tokens, nobody else claims anything for the grace period (>= TTL), and
// tokens keep growing. With 4 partitions every partition detects the loss on
// its own: the holder re-asserts in those it held shards of, and the grace
// holds back the free shard of a partition it held nothing in too.
func TestDataLoss(t *testing.T) {
	losses := []struct {
		name string
		lose func(t *testing.T, srv *redistest.Server)
	}{
		{"restart", func(t *testing.T, srv *redistest.Server) { srv.Restart(t) }},
		{"flushall", func(t *testing.T, srv *redistest.Server) {
			if _, err := srv.Do(context.Background(), "FLUSHALL"); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, loss := range losses {
		for _, parts := range []int{1, 4} {
			t.Run(fmt.Sprintf("%s/P=%d", loss.name, parts), func(t *testing.T) { dataLoss(t, loss.lose, parts) })
		}
	}
}

func dataLoss(t *testing.T, lose func(t *testing.T, srv *redistest.Server), parts int) {
	srv, direct := startRedis(t)
	cfg := testConfig("")
	cfg.Partitions = parts
	cfg.TTL, cfg.RenewDeadline, cfg.DataLossGrace = time.Second, 700*time.Millisecond, 1500*time.Millisecond
	a := newSession(t, newClient(t, srv.Addr()), cfg)
	b := newSession(t, newClient(t, srv.Addr()), cfg)
	endGraceAll(t, direct, a.Keys())
	ctx := testCtx(t)
	if _, err := a.SetLayoutIfAbsent(ctx, 4); err != nil {
		t.Fatal(err)
	}
	held := []ShardKey{{ID: 0, Count: 4}, {ID: 1, Count: 4}}
	var leases []*Lease
	var maxTok uint64
	for _, k := range held {
		l := claimOK(t, a, k)
		leases = append(leases, l)
		maxTok = max(maxTok, l.Token())
	}
	oldEpoch, _ := direct.Get(ctx, a.Keys().Epoch()).Result()

	lose(t, srv)
	lossAt := time.Now()
	eventually(t, 3*time.Second, "the holder re-asserts its leases", func() bool {
		n, err := direct.Exists(ctx, a.Keys().Lease(held[0]), a.Keys().Lease(held[1])).Result()
		return err == nil && n == 2
	})
	for _, l := range leases {
		if ok, err := l.Valid(ctx); err != nil || !ok {
			t.Fatalf("re-asserted lease %v: Valid %v, %v (Err %v)", l.Key(), ok, err, l.Err())
		}
	}
	if ep, _ := direct.Get(ctx, a.Keys().Epoch()).Result(); ep == "" || ep == oldEpoch {
		t.Fatalf("epoch after loss %q (before %q)", ep, oldEpoch)
	}
	if pttl, _ := direct.PTTL(ctx, a.Keys().Grace(0)).Result(); pttl < cfg.TTL {
		t.Fatalf("grace %v left, want at least the TTL %v", pttl, cfg.TTL)
	}
	// The layout the holder knew is back too.
	if l, err := LoadLayout(ctx, direct, a.Keys()); err != nil || l.Count != 4 {
		t.Fatalf("layout after loss: %+v, %v", l, err)
	}
	// b: the holder's shards are held; a free shard waits for the grace.
	if _, err := b.Claim(ctx, held[0]); !errors.Is(err, ErrLeaseHeld) && !errors.Is(err, ErrEpochChanged) {
		t.Fatalf("claim of a re-asserted shard: %v", err)
	}
	free := ShardKey{ID: 2, Count: 4}
	var claimedAt time.Time
	var lb *Lease
	eventually(t, 5*time.Second, "b claims a free shard after the grace", func() bool {
		l, err := b.Claim(ctx, free)
		switch {
		case err == nil:
			claimedAt, lb = time.Now(), l
			return true
		case errors.Is(err, ErrDataLossGrace), errors.Is(err, ErrEpochChanged):
			return false
		default:
			t.Fatalf("claim during grace: %v", err)
			return false
		}
	})
	if claimedAt.Sub(lossAt) < cfg.DataLossGrace-cfg.RenewInterval {
		t.Fatalf("claimed %v after the loss, grace is %v", claimedAt.Sub(lossAt), cfg.DataLossGrace)
	}
	if lb.Token() <= maxTok {
		t.Fatalf("token after data loss %d, before %d: not growing", lb.Token(), maxTok)
	}
	for _, l := range leases {
		if isClosed(l.Done()) {
			t.Fatalf("holder lost %v: %v", l.Key(), l.Err())
		}
	}
}

// A holder whose shard was claimed by someone else before it could
// re-assert loses that lease (Done closes) and keeps the others.
func TestDataLossReassertConflict(t *testing.T) {
	srv, direct := startRedis(t)
	cfg := testConfig("")
	cfg.TTL, cfg.RenewDeadline, cfg.RenewInterval = time.Second, 700*time.Millisecond, 200*time.Millisecond
	a := newSession(t, newClient(t, srv.Addr()), cfg)
	endGrace(t, direct, "")
	ctx := testCtx(t)
	l0, l1 := claimOK(t, a, ShardKey{ID: 0, Count: 2}), claimOK(t, a, ShardKey{ID: 1, Count: 2})
	if err := direct.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	// Before a notices, an intruder writes shard 0's lease (as a worker that
	// ignored the grace would).
	if err := direct.HSet(ctx, a.Keys().Lease(ShardKey{ID: 0, Count: 2}), "owner", "intruder", "token", "1").Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "a loses shard 0", func() bool { return isClosed(l0.Done()) })
	if !errors.Is(l0.Err(), ErrLeaseLost) {
		t.Fatalf("lease 0 ended with %v", l0.Err())
	}
	if ok, err := l1.Valid(ctx); err != nil || !ok || isClosed(l1.Done()) {
		t.Fatalf("lease 1 after re-assert: Valid %v, %v; Err %v", ok, err, l1.Err())
	}
}

// A new fleet (no epoch, nobody to re-assert) waits only the probe: the
// grace the first session sets is DataLossProbe, not DataLossGrace, and a
// claim succeeds once it is over.
func TestNewFleetWaitsOnlyTheProbe(t *testing.T) {
	srv, direct := startRedis(t)
	cfg := testConfig("")
	cfg.DataLossGrace = 5 * time.Second // far above the probe, so the two cannot be confused
	a := newSession(t, newClient(t, srv.Addr()), cfg)
	ctx := testCtx(t)
	probe := a.Config().DataLossProbe
	if pttl, err := direct.PTTL(ctx, a.Keys().Grace(0)).Result(); err != nil || pttl <= 0 || pttl > probe {
		t.Fatalf("grace of a new fleet: %v, %v; want (0, %v]", pttl, err, probe)
	}
	key := ShardKey{ID: 0, Count: 1}
	var ge *GraceError
	if _, err := a.Claim(ctx, key); !errors.As(err, &ge) || ge.Remaining > probe {
		t.Fatalf("claim during the probe: %v; want a GraceError of at most %v", err, probe)
	}
	eventually(t, 3*time.Second, "a claims after the probe", func() bool {
		_, err := a.Claim(ctx, key)
		if err != nil && !errors.Is(err, ErrDataLossGrace) {
			t.Fatalf("claim: %v", err)
		}
		return err == nil
	})
}

// When a session that never knew an epoch reaches a lost Redis first (it
// creates the epoch with only the probe), the holder's re-assertion within
// the probe still puts the full grace in force: the newcomer cannot claim
// the holder's shards, nor free ones, before DataLossGrace.
func TestDataLossNewcomerFirst(t *testing.T) {
	srv, direct := startRedis(t)
	cfg := testConfig("")
	cfg.DataLossGrace = 5 * time.Second
	a := newSession(t, newClient(t, srv.Addr()), cfg)
	endGrace(t, direct, "")
	ctx := testCtx(t)
	held := ShardKey{ID: 0, Count: 2}
	l := claimOK(t, a, held)
	if err := direct.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	b := newSession(t, newClient(t, srv.Addr()), cfg)
	eventually(t, 3*time.Second, "the holder re-asserts and extends the grace", func() bool {
		pttl, err := direct.PTTL(ctx, a.Keys().Grace(0)).Result()
		return err == nil && pttl > b.Config().DataLossProbe
	})
	if isClosed(l.Done()) {
		t.Fatalf("holder lost its lease: %v", l.Err())
	}
	if _, err := b.Claim(ctx, held); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("newcomer's claim of the re-asserted shard: %v", err)
	}
	if _, err := b.Claim(ctx, ShardKey{ID: 1, Count: 2}); !errors.Is(err, ErrDataLossGrace) {
		t.Fatalf("newcomer's claim of a free shard during the grace: %v", err)
	}
}
