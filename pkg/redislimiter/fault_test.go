package redislimiter

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/redistest"
)

// TestCrashedHolderFreesAfterHoldTTL: a process killed with SIGKILL while it
// holds a permit blocks its bucket for HoldTTL, not longer and not shorter.
func TestCrashedHolderFreesAfterHoldTTL(t *testing.T) {
	s := redistest.Start(t)
	prefix := uniquePrefix(t)
	cmd, lines := startHelper(t, helperConfig{mode: "hold", addr: s.Addr(), prefix: prefix, mc: 1, shard: 0})
	expectLine(t, lines, "HELD", 20*time.Second)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	l := newLimiter(t, newClient(t, s.Addr()), testOpts(prefix, 1)...)
	if err := l.WaitBucket(ctxT(t, 10*time.Second), 0); err != nil {
		t.Fatalf("WaitBucket after the holder died: %v", err)
	}
	l.UnlockBucket(0)
	entries := mustLog(t, l)
	grants := checkLog(t, entries, rulesOf(l)) // checks grant >= dead holder's grant + HoldTTL
	if len(grants) != 2 || grants[0].Holder == grants[1].Holder {
		t.Fatalf("want the helper's grant then ours, got %+v", grants)
	}
}

// TestRedisRestart: while Redis is down WaitBucket fails (never a permit);
// after a restart without persistence it works again, but only after the quiet
// period, so a permit handed out before the loss cannot overlap a new one.
func TestRedisRestart(t *testing.T) {
	s := redistest.Start(t)
	prefix := uniquePrefix(t)
	a := newLimiter(t, newClient(t, s.Addr()), testOpts(prefix, 1)...)
	b := newLimiter(t, newClient(t, s.Addr()), testOpts(prefix, 1)...)
	if err := a.WaitBucket(ctxT(t, 5*time.Second), 0); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := b.WaitBucket(short, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("b while a holds: got %v, want DeadlineExceeded", err)
	}

	s.Kill()
	err := b.WaitBucket(ctxT(t, 10*time.Second), 0)
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitBucket with Redis down: got %v, want a Redis error", err)
	}
	if err := s.RestartServer(); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitBucket(ctxT(t, 10*time.Second), 0); err != nil {
		t.Fatalf("WaitBucket after the restart: %v", err)
	}
	a.UnlockBucket(0) // a's permit died with the data: a no-op
	b.UnlockBucket(0)
	entries := mustLog(t, b)
	checkLog(t, entries, rulesOf(b))
	var loss, grant int64
	for _, e := range entries {
		switch e.Event {
		case "dataloss":
			loss = e.Micros
		case "grant":
			grant = e.Micros
		}
	}
	quiet := (testHold + testWindow + testMargin).Microseconds()
	if loss == 0 || grant-loss < quiet {
		t.Fatalf("grant %dµs after the data loss was detected (loss at %d), want >= %dµs quiet", grant-loss, loss, quiet)
	}
}

// TestNotificationConnectionKilled: killing the pub/sub connection over and
// over loses notifications; waiters still progress through the fallback.
func TestNotificationConnectionKilled(t *testing.T) {
	s := redistest.Start(t)
	admin := newClient(t, s.Addr())
	l := newLimiter(t, newClient(t, s.Addr()), testOpts(uniquePrefix(t), 1)...)
	ctx := ctxT(t, 20*time.Second)
	stop := make(chan struct{})
	var killed atomic.Int64
	var killer sync.WaitGroup
	killer.Add(1)
	go func() {
		defer killer.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				n, _ := admin.ClientKillByFilter(ctx, "TYPE", "pubsub").Result()
				killed.Add(n)
			}
		}
	}()
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.WaitBucket(ctx, i); err != nil {
				t.Errorf("waiter %d: %v", i, err)
				return
			}
			l.UnlockBucket(i)
		}()
	}
	wg.Wait()
	close(stop)
	killer.Wait()
	if killed.Load() == 0 {
		t.Fatal("no pub/sub connection was killed: the test proved nothing")
	}
	if g := len(checkLog(t, mustLog(t, l), rulesOf(l))); g != 6 {
		t.Fatalf("%d grants, want 6", g)
	}
}

// TestScriptFlush: losing the script cache mid-run (failover, SCRIPT FLUSH) is
// covered by the EVALSHA -> EVAL fallback.
func TestScriptFlush(t *testing.T) {
	s := redistest.Start(t)
	admin := newClient(t, s.Addr())
	l := newLimiter(t, newClient(t, s.Addr()), testOpts(uniquePrefix(t), 1)...)
	ctx := ctxT(t, 10*time.Second)
	for i := range 4 {
		if err := admin.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if err := l.WaitBucket(ctx, i); err != nil {
			t.Fatalf("WaitBucket after SCRIPT FLUSH: %v", err)
		}
		if err := admin.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		l.UnlockBucket(i)
	}
	if g := len(checkLog(t, mustLog(t, l), rulesOf(l))); g != 4 {
		t.Fatalf("%d grants, want 4", g)
	}
	if n := countEvents(mustLog(t, l), "unlock"); n != 4 {
		t.Fatalf("%d unlocks, want 4 (an unlock after SCRIPT FLUSH was lost)", n)
	}
}

// TestCluster: on a 3-master Redis Cluster every key lands in one slot and the
// limiter keeps its guarantees (PUBLISH is broadcast cluster-wide).
func TestCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	newCC := func() *redis.ClusterClient {
		cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), ContextTimeoutEnabled: true})
		t.Cleanup(func() { _ = cc.Close() })
		return cc
	}
	prefix := "cluster-test" // no hash tag: New must add one
	a := newLimiter(t, newCC(), testOpts(prefix, 2)...)
	b := newLimiter(t, newCC(), testOpts(prefix, 2)...)
	ctx := ctxT(t, 20*time.Second)
	slot := func(key string) int64 {
		n, err := a.client.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	want := slot(a.cfg.KeyPrefix)
	for _, k := range append(scriptKeys(a.cfg.KeyPrefix, 1), maxConcKey(a.cfg.KeyPrefix)) {
		if got := slot(k); got != want {
			t.Fatalf("key %q in slot %d, want %d", k, got, want)
		}
	}
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := []*Limiter{a, b}[i%2]
			if err := l.WaitBucket(ctx, i); err != nil {
				t.Errorf("WaitBucket(%d): %v", i, err)
				return
			}
			l.UnlockBucket(i)
		}()
	}
	wg.Wait()
	if g := len(checkLog(t, mustLog(t, a), rulesOf(a))); g != 12 {
		t.Fatalf("%d grants, want 12", g)
	}
}

// TestBudgetFloor: grants decrement the stored budget; at the reserve floor
// WaitBucket returns ErrBudgetExhausted instead of a permit.
func TestBudgetFloor(t *testing.T) {
	s := redistest.Start(t)
	opts := append(testOpts(uniquePrefix(t), 4), WithBudgetReserve(1))
	l := newLimiter(t, newClient(t, s.Addr()), opts...)
	ctx := ctxT(t, 10*time.Second)
	if err := l.SetBudget(ctx, 3, time.Minute); err != nil {
		t.Fatal(err)
	}
	for shard := range 2 {
		if err := l.WaitBucket(ctx, shard); err != nil {
			t.Fatalf("grant %d within budget: %v", shard, err)
		}
		l.UnlockBucket(shard)
	}
	err := l.WaitBucket(ctx, 2)
	var be *BudgetError
	if !errors.Is(err, ErrBudgetExhausted) || !errors.As(err, &be) || be.Remaining != 1 || be.Reserve != 1 {
		t.Fatalf("at the floor: got %v, want BudgetError{Remaining: 1, Reserve: 1}", err)
	}
	// The reset is the budget key's expiry, set a minute ago at most.
	if be.ResetAfter <= 0 || be.ResetAfter > time.Minute {
		t.Fatalf("at the floor: ResetAfter %v, want in (0, 1m]", be.ResetAfter)
	}
	if !strings.Contains(be.Error(), "resets in") {
		t.Errorf("BudgetError %q does not say when the budget resets", be.Error())
	}
	st, ok, err := l.Budget(ctx)
	if err != nil || !ok || st.Remaining != 1 || st.ResetAfter <= 0 || st.ResetAfter > time.Minute {
		t.Fatalf("Budget: %+v ok=%v err=%v, want 1 remaining", st, ok, err)
	}
	if n := queueLen(t, l, 2); n != 0 {
		t.Fatalf("refused waiter left %d tickets", n)
	}
	if err := l.SetBudget(ctx, -1, time.Minute); err == nil {
		t.Fatal("SetBudget(-1) accepted")
	}

	// A budget key without an expiry (written by hand) has no known reset.
	if err := l.client.Persist(ctx, budgetKey(l.cfg.KeyPrefix)).Err(); err != nil {
		t.Fatal(err)
	}
	err = l.WaitBucket(ctx, 2)
	if !errors.As(err, &be) || be.ResetAfter != 0 {
		t.Fatalf("at the floor without an expiry: got %v, want a BudgetError with ResetAfter 0", err)
	}
}

// TestBudgetErrorResetAfterFollowsTheKey: a refusal reports the time left
// until the budget key expires, as it counts down; once it has expired the
// budget no longer limits grants.
func TestBudgetErrorResetAfterFollowsTheKey(t *testing.T) {
	s := redistest.Start(t)
	opts := append(testOpts(uniquePrefix(t), 1), WithBudgetReserve(5))
	l := newLimiter(t, newClient(t, s.Addr()), opts...)
	ctx := ctxT(t, 10*time.Second)
	const resetAfter = 800 * time.Millisecond
	set := time.Now()
	if err := l.SetBudget(ctx, 5, resetAfter); err != nil {
		t.Fatal(err)
	}
	err := l.WaitBucket(ctx, 0)
	elapsed := time.Since(set)
	var be *BudgetError
	if !errors.As(err, &be) {
		t.Fatalf("at the floor: got %v, want a BudgetError", err)
	}
	// Redis's PTTL is whole milliseconds, counted from its own receipt of
	// SetBudget: allow 1 ms either side.
	if be.ResetAfter > resetAfter || be.ResetAfter < resetAfter-elapsed-time.Millisecond {
		t.Fatalf("ResetAfter %v, want within [%v, %v]", be.ResetAfter, resetAfter-elapsed, resetAfter)
	}
	// A gateway reads the delay through the RetryAfter method (gateway.IdentifyLimiter).
	var ra interface{ RetryAfter() time.Duration }
	if !errors.As(err, &ra) || ra.RetryAfter() != be.ResetAfter {
		t.Fatalf("RetryAfter of %v does not give ResetAfter %v", err, be.ResetAfter)
	}
	waitFor(t, 10*time.Second, "a grant once the budget key expired", func() bool {
		if err := l.WaitBucket(ctx, 0); err != nil {
			return false
		}
		l.UnlockBucket(0)
		return true
	})
	if _, ok, err := l.Budget(ctx); err != nil || ok {
		t.Fatalf("Budget after the reset: ok=%v err=%v, want no budget stored", ok, err)
	}
}

// TestRedisPaused: with Redis frozen (SIGSTOP) a waiter's deadline still ends
// the wait with ctx.Err() and no permit; once Redis continues, grants resume.
func TestRedisPaused(t *testing.T) {
	s := redistest.Start(t)
	l := newLimiter(t, newClient(t, s.Addr()), testOpts(uniquePrefix(t), 4)...)
	if err := l.WaitBucket(ctxT(t, 5*time.Second), 0); err != nil {
		t.Fatal(err)
	}
	l.UnlockBucket(0)
	s.Pause()
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			s.Resume()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := l.WaitBucket(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitBucket on a paused Redis: got %v, want DeadlineExceeded", err)
	}
	s.Resume()
	resumed = true
	if err := l.WaitBucket(ctxT(t, 5*time.Second), 2); err != nil {
		t.Fatalf("WaitBucket after resume: %v", err)
	}
	l.UnlockBucket(2)
	checkLog(t, mustLog(t, l), rulesOf(l))
}

// TestCrashedWaiterExpires: a process killed while queued leaves a ticket that
// stops blocking the queue after TicketTTL; the waiter behind it is served.
func TestCrashedWaiterExpires(t *testing.T) {
	s := redistest.Start(t)
	prefix := uniquePrefix(t)
	l := newLimiter(t, newClient(t, s.Addr()), testOpts(prefix, 1)...)
	ctx := ctxT(t, 20*time.Second)
	if err := l.WaitBucket(ctx, 0); err != nil {
		t.Fatal(err)
	}
	cmd, _ := startHelper(t, helperConfig{mode: "hold", addr: s.Addr(), prefix: prefix, mc: 1, shard: 0})
	waitFor(t, 20*time.Second, "helper queued", func() bool { return queueLen(t, l, 0) == 1 })
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	next := make(chan error, 1)
	go func() { next <- l.WaitBucket(ctx, 0) }()
	waitFor(t, 5*time.Second, "our waiter queued behind the dead one", func() bool { return queueLen(t, l, 0) == 2 })
	l.UnlockBucket(0)
	if err := <-next; err != nil {
		t.Fatalf("waiter behind a dead ticket: %v", err)
	}
	l.UnlockBucket(0)
	entries := mustLog(t, l)
	checkLog(t, entries, rulesOf(l))
	for _, e := range entries {
		if e.Event == "grant" && e.Holder != l.cfg.HolderID {
			t.Fatalf("the killed waiter was granted: %+v", e)
		}
	}
}

// TestRedisRestartNewProcessFirst: after a restart, a process that never saw
// the old state recreates the epoch first (short quiet period); a process that
// did see it then still enforces the full quiet period from the epoch's birth.
func TestRedisRestartNewProcessFirst(t *testing.T) {
	s := redistest.Start(t)
	prefix := uniquePrefix(t)
	old := newLimiter(t, newClient(t, s.Addr()), testOpts(prefix, 1)...) // knows the epoch
	s.Restart(t)
	fresh := New(newClient(t, s.Addr()), testOpts(prefix, 1)...)
	defer fresh.Close(context.Background())
	if err := fresh.runLeave(context.Background(), 0, "fresh"); err != nil { // creates the new epoch
		t.Fatal(err)
	}
	if err := old.WaitBucket(ctxT(t, 10*time.Second), 0); err != nil {
		t.Fatal(err)
	}
	old.UnlockBucket(0)
	checkOneGrantAfterFullQuiet(t, old)
}

// checkOneGrantAfterFullQuiet checks that l's grant log holds one grant, no
// sooner than the epoch's birth + the full quiet period after a data loss.
func checkOneGrantAfterFullQuiet(t *testing.T, l *Limiter) {
	t.Helper()
	born, err := l.client.HGet(context.Background(), scriptKeys(l.cfg.KeyPrefix, 0)[keyEpoch], "born").Int64()
	if err != nil {
		t.Fatal(err)
	}
	grants := checkLog(t, mustLog(t, l), rulesOf(l))
	quiet := (testHold + testWindow + testMargin).Microseconds()
	if len(grants) != 1 || grants[0].Micros < born*1000+quiet {
		t.Fatalf("grant %+v, want one at >= epoch birth (%d ms) + %dµs", grants, born, quiet)
	}
}

// TestTrustNewEpoch: a trusting limiter that finds no epoch grants without the
// quiet period, but a limiter that knew the lost state still enforces the full
// one from the epoch's birth, whoever created it.
func TestTrustNewEpoch(t *testing.T) {
	s := redistest.Start(t)
	prefix := uniquePrefix(t)
	quietKey := scriptKeys(prefix, 0)[keyQuiet]
	fresh := New(newClient(t, s.Addr()), append(testOpts(prefix, 1), WithTrustNewEpoch(true))...)
	defer fresh.Close(context.Background())
	if err := fresh.runLeave(context.Background(), 0, "fresh"); err != nil { // creates the epoch
		t.Fatal(err)
	}
	if n, err := fresh.client.Exists(context.Background(), quietKey).Result(); err != nil || n != 0 {
		t.Fatalf("quiet key after a trusting limiter created the epoch: %d, %v", n, err)
	}
	if err := fresh.WaitBucket(ctxT(t, 10*time.Second), 0); err != nil {
		t.Fatal(err)
	}
	fresh.UnlockBucket(0)

	s.Restart(t) // fresh knew the old epoch now
	other := New(newClient(t, s.Addr()), append(testOpts(prefix, 1), WithTrustNewEpoch(true))...)
	defer other.Close(context.Background())
	if err := other.runLeave(context.Background(), 0, "other"); err != nil { // recreates it, no quiet
		t.Fatal(err)
	}
	if err := fresh.WaitBucket(ctxT(t, 10*time.Second), 0); err != nil {
		t.Fatal(err)
	}
	fresh.UnlockBucket(0)
	checkOneGrantAfterFullQuiet(t, fresh)
}

// TestLearnEpochBeforeFirstCall: a trusting limiter that has not called yet
// but learnt the epoch at start notices a FLUSHALL, and keeps the full quiet
// period after it; without LearnEpoch it would take the flushed Redis for a
// new one and grant at once, beside a grant of another limiter just before.
func TestLearnEpochBeforeFirstCall(t *testing.T) {
	s := redistest.Start(t)
	prefix := uniquePrefix(t)
	opts := append(testOpts(prefix, 1), WithTrustNewEpoch(true))
	first := New(newClient(t, s.Addr()), opts...)
	defer first.Close(context.Background())
	if err := first.WaitBucket(ctxT(t, 10*time.Second), 0); err != nil { // creates the epoch
		t.Fatal(err)
	}
	first.UnlockBucket(0)
	late := New(newClient(t, s.Addr()), opts...)
	defer late.Close(context.Background())
	if err := late.LearnEpoch(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := late.client.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if err := late.WaitBucket(ctxT(t, 10*time.Second), 0); err != nil {
		t.Fatal(err)
	}
	late.UnlockBucket(0)
	checkOneGrantAfterFullQuiet(t, late)
}
