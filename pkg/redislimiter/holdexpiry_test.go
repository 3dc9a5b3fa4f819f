package redislimiter

import (
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/redistest"
)

// A permit whose holder never unlocks (a crashed holder) frees its bucket
// HoldTTL after the grant, to the µs of the grant log, never sooner. The hold
// used to lean on the key's own expiry, in whole ms: PTTL reads 0 during the
// last ms, so the next waiter, woken for that ms, was granted up to 1 ms
// early (TestPropertyMultiProcess caught a 247 µs early grant in CI).
func TestHoldTTLExpiryIsNeverEarly(t *testing.T) {
	s := redistest.Start(t)
	prefix := uniquePrefix(t)
	opts := []ConfigOpt{WithMaxConcurrency(1), WithWindow(time.Millisecond), WithMargin(0),
		WithHoldTTL(7 * time.Millisecond), WithPollInterval(testPoll), WithTicketTTL(5 * testPoll),
		WithKeyPrefix(prefix), WithGrantLog(true), WithLogger(discard)}
	ls := []*Limiter{newLimiter(t, newClient(t, s.Addr()), opts...), newLimiter(t, newClient(t, s.Addr()), opts...)}
	const rounds = 60
	for i := range rounds {
		// Each grant is left held: the next round's waiter gets the bucket
		// only when the hold expires.
		if err := ls[i%2].WaitBucket(ctxT(t, 5*time.Second), 0); err != nil {
			t.Fatalf("round %d: WaitBucket: %v", i, err)
		}
	}
	grants := checkLog(t, mustLog(t, ls[0]), rulesOf(ls[0]))
	if len(grants) != rounds {
		t.Fatalf("%d grants logged, want %d", len(grants), rounds)
	}
	hold := ls[0].Config().HoldTTL.Microseconds()
	for i := 1; i < len(grants); i++ {
		if gap := grants[i].Micros - grants[i-1].Micros; gap < hold {
			t.Errorf("grant %d came %d µs after the held grant before it, want >= HoldTTL %d µs", i, gap, hold)
		}
	}
}
