package redislimiter

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/redistest"
)

// TestGrantSpacing: consecutive permits of one bucket are at least window +
// margin apart on the server clock, and other buckets are not delayed by it.
func TestGrantSpacing(t *testing.T) {
	s := redistest.Start(t)
	l := newLimiter(t, newClient(t, s.Addr()), testOpts(uniquePrefix(t), 2)...)
	ctx := ctxT(t, 10*time.Second)
	for range 4 {
		for _, shard := range []int{0, 1} { // buckets 0 and 1
			if err := l.WaitBucket(ctx, shard); err != nil {
				t.Fatalf("WaitBucket(%d): %v", shard, err)
			}
			l.UnlockBucket(shard)
		}
	}
	grants := checkLog(t, mustLog(t, l), rulesOf(l))
	if len(grants) != 8 {
		t.Fatalf("got %d grants, want 8", len(grants))
	}
}

// TestConcurrentLimiters: several limiters (own connections) and many
// goroutines stay within one holder per bucket, the spacing, FIFO and
// max_concurrency per window.
func TestConcurrentLimiters(t *testing.T) {
	s := redistest.Start(t)
	prefix := uniquePrefix(t)
	var ls []*Limiter
	for range 3 {
		ls = append(ls, newLimiter(t, newClient(t, s.Addr()), testOpts(prefix, 4)...))
	}
	ctx := ctxT(t, 20*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 48)
	for i := range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := ls[i%len(ls)]
			if err := l.WaitBucket(ctx, i); err != nil {
				errs <- err
				return
			}
			l.UnlockBucket(i)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("WaitBucket: %v", err)
	}
	if grants := checkLog(t, mustLog(t, ls[0]), rulesOf(ls[0])); len(grants) != 48 {
		t.Fatalf("got %d grants, want 48", len(grants))
	}
}

// queueLen is the number of waiters queued on bucket b.
func queueLen(t testing.TB, l *Limiter, b int) int64 {
	n, err := l.client.ZCard(context.Background(), scriptKeys(l.cfg.KeyPrefix, b)[keyQueue]).Result()
	if err != nil {
		t.Fatalf("ZCARD: %v", err)
	}
	return n
}

// TestFIFO: waiters that arrive in order (across two processes' limiters) are
// granted in that order.
func TestFIFO(t *testing.T) {
	s := redistest.Start(t)
	prefix := uniquePrefix(t)
	a := newLimiter(t, newClient(t, s.Addr()), testOpts(prefix, 1)...)
	b := newLimiter(t, newClient(t, s.Addr()), testOpts(prefix, 1)...)
	ctx := ctxT(t, 10*time.Second)
	if err := a.WaitBucket(ctx, 0); err != nil {
		t.Fatal(err)
	}
	const n = 6
	order := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		l := []*Limiter{a, b}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.WaitBucket(ctx, i+1); err != nil { // every shard is bucket 0
				t.Errorf("waiter %d: %v", i, err)
				return
			}
			order <- i
			l.UnlockBucket(i + 1)
		}()
		waitFor(t, 5*time.Second, "waiter queued", func() bool { return queueLen(t, a, 0) == int64(i+1) })
	}
	a.UnlockBucket(0)
	wg.Wait()
	close(order)
	want := 0
	for got := range order {
		if got != want {
			t.Fatalf("granted waiter %d, want %d (FIFO)", got, want)
		}
		want++
	}
	checkLog(t, mustLog(t, a), rulesOf(a))
}

// TestCancelLeavesQueue: a waiter whose ctx ends returns ctx.Err(), leaves the
// queue, and does not block the waiter behind it.
func TestCancelLeavesQueue(t *testing.T) {
	s := redistest.Start(t)
	l := newLimiter(t, newClient(t, s.Addr()), testOpts(uniquePrefix(t), 1)...)
	ctx := ctxT(t, 10*time.Second)
	if err := l.WaitBucket(ctx, 0); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	first := make(chan error, 1)
	go func() { first <- l.WaitBucket(cctx, 1) }()
	waitFor(t, 5*time.Second, "first waiter queued", func() bool { return queueLen(t, l, 0) == 1 })
	second := make(chan error, 1)
	go func() { second <- l.WaitBucket(ctx, 2) }()
	waitFor(t, 5*time.Second, "second waiter queued", func() bool { return queueLen(t, l, 0) == 2 })

	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: got %v, want context.Canceled", err)
	}
	waitFor(t, 5*time.Second, "cancelled ticket gone", func() bool { return queueLen(t, l, 0) == 1 })
	l.UnlockBucket(0)
	if err := <-second; err != nil {
		t.Fatalf("second waiter: %v", err)
	}
	l.UnlockBucket(2)
	entries := mustLog(t, l)
	checkLog(t, entries, rulesOf(l))
	if g := countEvents(entries, "grant"); g != 2 {
		t.Fatalf("%d grants, want 2 (the cancelled waiter must not be granted)", g)
	}
}

// TestDeadlineWhileWaiting: an expired deadline returns DeadlineExceeded.
func TestDeadlineWhileWaiting(t *testing.T) {
	s := redistest.Start(t)
	l := newLimiter(t, newClient(t, s.Addr()), testOpts(uniquePrefix(t), 1)...)
	if err := l.WaitBucket(ctxT(t, 5*time.Second), 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := l.WaitBucket(ctx, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	waitFor(t, 5*time.Second, "expired waiter gone from the queue", func() bool { return queueLen(t, l, 0) == 0 })
}

// TestNonHolderUnlockIsNoop: UnlockBucket from a limiter that does not hold
// the permit (another process, or a shard of another bucket) changes nothing.
func TestNonHolderUnlockIsNoop(t *testing.T) {
	s := redistest.Start(t)
	prefix := uniquePrefix(t)
	a := newLimiter(t, newClient(t, s.Addr()), testOpts(prefix, 2)...)
	b := newLimiter(t, newClient(t, s.Addr()), testOpts(prefix, 2)...)
	ctx := ctxT(t, 5*time.Second)
	if err := a.WaitBucket(ctx, 0); err != nil {
		t.Fatal(err)
	}
	key := holdKey(a.cfg.KeyPrefix, 0)
	before, err := a.client.HGetAll(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	b.UnlockBucket(0) // another process
	a.UnlockBucket(1) // another bucket
	b.UnlockBucket(2)
	after, err := a.client.HGetAll(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if before["t"] != after["t"] || after["u"] != "0" {
		t.Fatalf("hold changed by a non-holder: before %v after %v", before, after)
	}
	// The script itself refuses a wrong ticket.
	if held, err := b.unlock(ctx, 0, "not-the-holder"); err != nil || held {
		t.Fatalf("unlock with a foreign ticket: held=%v err=%v, want false, nil", held, err)
	}
	a.UnlockBucket(0)
	checkLog(t, mustLog(t, a), rulesOf(a))
}

// TestClose: Close releases a pending waiter with ErrClosed, and later calls
// get ErrClosed too.
func TestClose(t *testing.T) {
	s := redistest.Start(t)
	l := New(newClient(t, s.Addr()), testOpts(uniquePrefix(t), 1)...)
	ctx := ctxT(t, 5*time.Second)
	if err := l.WaitBucket(ctx, 0); err != nil {
		t.Fatal(err)
	}
	pending := make(chan error, 1)
	go func() { pending <- l.WaitBucket(ctx, 0) }()
	waitFor(t, 5*time.Second, "waiter queued", func() bool { return queueLen(t, l, 0) == 1 })
	l.Close(ctx)
	if err := <-pending; !errors.Is(err, ErrClosed) {
		t.Fatalf("pending waiter: got %v, want ErrClosed", err)
	}
	if err := l.WaitBucket(ctx, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: got %v, want ErrClosed", err)
	}
	if n := queueLen(t, l, 0); n != 0 {
		t.Fatalf("queue has %d tickets after Close, want 0", n)
	}
	l.UnlockBucket(0) // still allowed after Close
	l.Close(ctx)      // idempotent
}

// TestNewEpochQuiet: on a Redis without the fleet's epoch (new, or lost with
// every process restarted) the first grant waits one window + margin, since
// Discord may still count IDENTIFYs sent just before.
func TestNewEpochQuiet(t *testing.T) {
	s := redistest.Start(t)
	l := New(newClient(t, s.Addr()), testOpts(uniquePrefix(t), 1)...)
	defer l.Close(context.Background())
	ctx := ctxT(t, 5*time.Second)
	if err := l.WaitBucket(ctx, 0); err != nil {
		t.Fatal(err)
	}
	l.UnlockBucket(0)
	born, err := l.client.HGet(ctx, scriptKeys(l.cfg.KeyPrefix, 0)[keyEpoch], "born").Int64()
	if err != nil {
		t.Fatal(err)
	}
	grants := checkLog(t, mustLog(t, l), rulesOf(l))
	if len(grants) != 1 || grants[0].Micros < born*1000+(testWindow+testMargin).Microseconds() {
		t.Fatalf("first grant %+v, want one at >= epoch birth (%d ms) + window + margin", grants, born)
	}
}
