package lease

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// P7 (clock independence) through P2 (self-fence before takeover) and P1
// (one owner): a holder whose clock runs 1-d or 1+d times real time (d =
// MaxClockDrift) and reads an hour off, cut off from Redis, fences strictly
// before Redis expires its member key (the lease's validity) and before a
// successor's claim is even sent.
//
// The skewed clock runs on real time (Redis' TTL does), so this is a real
// race between the holder's fence timer and Redis' expiry; the margins
// logged are lower bounds of expiry - fence. LocalConfig has DefaultConfig's
// ratios: at rate 0.9 the fence comes RenewDeadline/0.9 = 444 ms after the
// last good renew was sent, the expiry at least TTL = 600 ms after.
func TestSkewedClockFencesBeforeExpiry(t *testing.T) {
	cfg := testConfig("")
	d := cfg.withDefaults().MaxClockDrift
	for _, tc := range []struct {
		name   string
		rate   float64
		offset time.Duration
	}{
		{"slow, an hour ahead", 1 - d, time.Hour},
		{"slow, an hour behind", 1 - d, -time.Hour},
		{"fast, an hour ahead", 1 + d, time.Hour},
		{"fast, an hour behind", 1 + d, -time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := raceFenceAgainstExpiry(t, cfg, sessionHooks{clock: newSkewedClock(tc.rate, tc.offset)})
			if !errors.Is(r.leaseErr, ErrSelfFenced) {
				t.Fatalf("holder's lease ended with %v, want ErrSelfFenced", r.leaseErr)
			}
			if r.goneBeforeFence {
				t.Fatalf("P2: member key gone by %v while the holder was still unfenced (rate %v): %+v", r.goneAt, tc.rate, r)
			}
			if !r.aliveAfterFence {
				t.Fatalf("P2: no read after the fence (seen by %v) found the member key alive; the key was gone by %v: %+v",
					r.fencedAt, r.goneAt, r)
			}
			if !r.fencedBeforeClaim || r.twoOwners {
				t.Fatalf("P1: successor's claim (sent at %v) succeeded before the holder fenced (seen by %v): %+v",
					r.claimedAt, r.fencedAt, r)
			}
			t.Logf("rate %v offset %v: fenced by %v, member key gone by %v, successor claimed at %v; expiry - fence >= %v",
				tc.rate, tc.offset, r.fencedAt, r.goneAt, r.claimedAt, r.marginLow)
		})
	}
}

// Negative control: the same race, but the holder's clock runs at half
// speed with timings that tolerate only 1/3 (LocalConfig: RenewDeadline/TTL
// = 2/3, so RenewDeadline/0.5 > TTL). validate rejects such a config when it
// claims MaxClockDrift 0.5; started anyway, Redis expires the member key
// first and the successor claims while the holder still believes it owns
// the shard. The harness can see the violation it guards against.
func TestSkewedClockBeyondDriftExpiresFirst(t *testing.T) {
	cfg := testConfig("")
	cfg.MaxClockDrift = 0.5
	var ce *ConfigError
	if err := cfg.withDefaults().validate(); !errors.As(err, &ce) || ce.Field != "TTL" {
		t.Fatalf("validate(LocalConfig with MaxClockDrift 0.5) = %v, want a TTL error", err)
	}
	r := raceFenceAgainstExpiry(t, cfg, sessionHooks{clock: newSkewedClock(0.5, time.Hour), skipValidation: true})
	if !r.goneBeforeFence {
		t.Fatalf("member key did not expire before the fence (fenced by %v, gone by %v): %+v", r.fencedAt, r.goneAt, r)
	}
	if !r.twoOwners {
		t.Fatalf("successor's claim (sent at %v) did not overlap the unfenced holder (fenced by %v): %+v",
			r.claimedAt, r.fencedAt, r)
	}
	if !errors.Is(r.leaseErr, ErrSelfFenced) {
		t.Fatalf("holder's lease ended with %v, want ErrSelfFenced (late)", r.leaseErr)
	}
	t.Logf("rate 0.5: member key gone by %v, successor claimed at %v, holder unfenced until at least %v (fence - expiry >= %v), fenced by %v",
		r.goneAt, r.claimedAt, r.openUntil, r.openUntil-r.goneAt, r.fencedAt)
}

// fenceRace is what raceFenceAgainstExpiry saw, in real time since the
// holder's link was black-holed. Times of events are upper bounds (when a
// poll saw them); openUntil is a lower bound of the fence. The flags are
// orderings that hold whatever the polling latency.
type fenceRace struct {
	fencedAt  time.Duration // a poll found the holder's lease Done closed (fence <= fencedAt)
	openUntil time.Duration // the last poll that found Done open started then (fence > openUntil)
	goneAt    time.Duration // a PTTL reply found the member key gone (expiry <= goneAt)
	claimedAt time.Duration // the successor's first successful Claim was sent then

	aliveAfterFence   bool          // a PTTL sent after fencedAt found the member key alive: fence < expiry
	marginLow         time.Duration // that PTTL's send time + its PTTL - fencedAt: expiry - fence >= marginLow
	goneBeforeFence   bool          // Done was still open after the reply that found the key gone: expiry < fence
	fencedBeforeClaim bool          // Done had closed before the successful Claim was sent
	twoOwners         bool          // Done was still open when the successful Claim returned

	leaseErr error // the holder's lease's Err at the end
}

// raceFenceAgainstExpiry starts a holder (cfg, hooks) whose link to Redis
// goes through a fault proxy and a successor on a direct link, lets the
// holder claim a shard and renew a few times, black-holes the holder's link,
// then polls from one goroutine, in order, until the holder fenced, its
// member key is gone and the successor has claimed: is the holder's Done
// closed, the member key's PTTL, one Claim by the successor.
func raceFenceAgainstExpiry(t *testing.T, cfg Config, hooks sessionHooks) fenceRace {
	t.Helper()
	srv, direct := startRedis(t)
	proxy := newFaultProxy(t, srv.Addr())
	a := newHookedSession(t, newClient(t, proxy.Addr()), cfg, hooks)
	b := newSession(t, direct, testConfig(""))
	endGrace(t, direct, "")
	key := ShardKey{ID: 0, Count: 1}
	la := claimOK(t, a, key)

	// With Redis reachable the skewed holder renews and keeps its lease (a
	// clock offset leaking into a deadline would fence or starve it).
	renews, last := 0, a.view.Load()
	eventually(t, 5*time.Second, "three renews on the skewed clock", func() bool {
		if v := a.view.Load(); v != last {
			renews++
			last = v
		}
		return renews >= 3
	})
	if isClosed(la.Done()) {
		t.Fatalf("holder fenced while Redis was reachable: %v", la.Err())
	}

	r := fenceRace{fencedAt: -1, openUntil: -1, goneAt: -1, claimedAt: -1}
	ctx := testCtx(t)
	t.Cleanup(func() { proxy.Set(faultPass) }) // before the sessions' Close
	start := time.Now()
	proxy.Set(faultBlackhole)
	deadline := start.Add(15 * time.Second)
	for r.fencedAt < 0 || r.goneAt < 0 || r.claimedAt < 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not within 15s of the black hole: %+v", r)
		}
		before := time.Since(start)
		closed := isClosed(la.Done())
		switch {
		case !closed:
			r.openUntil = before
		case r.fencedAt < 0:
			r.fencedAt = time.Since(start)
		}
		pollMember(t, ctx, direct, a.memKey, start, la, &r)
		if r.claimedAt < 0 {
			pollClaim(t, b, key, start, la, &r)
		}
		time.Sleep(2 * time.Millisecond) // polling against a deadline
	}
	r.leaseErr = la.Err()
	return r
}

// pollMember reads the member key's PTTL once and records what it orders.
func pollMember(t *testing.T, ctx context.Context, direct *redis.Client, memKey string, start time.Time, la *Lease, r *fenceRace) {
	t.Helper()
	sent := time.Since(start)
	pttl, err := direct.PTTL(ctx, memKey).Result()
	if err != nil {
		t.Fatalf("PTTL %s: %v", memKey, err)
	}
	switch {
	case pttl >= 0: // 0: it expires within the millisecond, but exists
		if r.goneAt >= 0 {
			t.Fatalf("member key %s back after it was gone (PTTL %v)", memKey, pttl)
		}
		if r.fencedAt >= 0 && !r.aliveAfterFence {
			r.aliveAfterFence = true
			r.marginLow = sent + pttl - r.fencedAt
		}
	case pttl == -2: // go-redis returns PTTL's -2 (no such key) as -2ns
		if r.goneAt < 0 {
			r.goneAt = time.Since(start)
			r.goneBeforeFence = !isClosed(la.Done())
		}
	default:
		t.Fatalf("member key %s has PTTL %v: no expiry", memKey, pttl)
	}
}

// pollClaim makes one Claim by the successor and records what it orders.
func pollClaim(t *testing.T, b *Session, key ShardKey, start time.Time, la *Lease, r *fenceRace) {
	t.Helper()
	fenced := isClosed(la.Done())
	call := time.Since(start)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err := b.Claim(ctx, key)
	cancel()
	switch {
	case err == nil:
		r.claimedAt = call
		r.fencedBeforeClaim = fenced
		r.twoOwners = !isClosed(la.Done())
	case !errors.Is(err, ErrLeaseHeld):
		t.Fatalf("successor's claim: %v", err)
	}
}

// newHookedSession is newSession with test hooks; the session is closed when
// t ends.
func newHookedSession(t testing.TB, client redis.UniversalClient, cfg Config, hooks sessionHooks) *Session {
	t.Helper()
	s, err := newSessionHooked(testCtx(t), client, cfg, hooks)
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}
