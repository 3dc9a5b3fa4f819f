package lease

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// watchDone records (monotonic, since start) when ch closes.
func watchDone(t *testing.T, start time.Time, ch <-chan struct{}) *atomic.Int64 {
	t.Helper()
	at := &atomic.Int64{}
	at.Store(-1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-ch:
			at.Store(int64(time.Since(start)))
		case <-time.After(20 * time.Second):
		}
	}()
	t.Cleanup(func() { <-done })
	return at
}

// takeOver claims key from b until it succeeds, and returns when the
// successful call started (monotonic, since start).
func takeOver(t *testing.T, b *Session, key ShardKey, start time.Time) (*Lease, time.Duration) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		call := time.Since(start)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		l, err := b.Claim(ctx, key)
		cancel()
		if err == nil {
			return l, call
		}
		time.Sleep(5 * time.Millisecond) // polling the lease against a deadline
	}
	t.Fatalf("successor never claimed %v", key)
	return nil, 0
}

// P2: a holder cut off from Redis (black hole, latency beyond the deadline,
// connection resets that keep failing) self-fences before any successor can
// claim: its lease's Done closes before the successor's successful claim
// call even starts.
func TestSelfFenceBeforeTakeover(t *testing.T) {
	faults := []struct {
		name   string
		inject func(p *faultProxy)
	}{
		{"black hole", func(p *faultProxy) { p.Set(faultBlackhole) }},
		{"latency beyond the deadline", func(p *faultProxy) { p.SetLatency(2 * time.Second) }},
		{"reset then black hole", func(p *faultProxy) { p.Set(faultBlackhole); p.Reset() }},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			srv, direct := startRedis(t)
			proxy := newFaultProxy(t, srv.Addr())
			a := newSession(t, newClient(t, proxy.Addr()), testConfig(""))
			b := newSession(t, direct, testConfig(""))
			endGrace(t, direct, "")
			key := ShardKey{ID: 0, Count: 1}
			la := claimOK(t, a, key)

			start := time.Now()
			doneAt := watchDone(t, start, la.Done())
			f.inject(proxy)
			_, claimCall := takeOver(t, b, key, start)
			if d := doneAt.Load(); d < 0 || time.Duration(d) >= claimCall {
				t.Fatalf("holder fenced at %v, successor's claim started at %v", time.Duration(d), claimCall)
			}
			if !errors.Is(la.Err(), ErrSelfFenced) {
				t.Fatalf("lease ended with %v, want ErrSelfFenced", la.Err())
			}
			t.Logf("fenced at %v, successor claimed at %v (TTL %v)", time.Duration(doneAt.Load()), claimCall, a.cfg.TTL)
			proxy.Set(faultPass)
		})
	}
}

// P2 with the whole Redis paused (SIGSTOP) longer than the TTL: the holder
// fences on its own clock while Redis is frozen; when Redis resumes, its
// member key has expired and the successor claims at once, after the fence.
func TestSelfFenceRedisPaused(t *testing.T) {
	srv, direct := startRedis(t)
	a := newSession(t, newClient(t, srv.Addr()), testConfig(""))
	endGrace(t, direct, "")
	key := ShardKey{ID: 0, Count: 1}
	la := claimOK(t, a, key)
	start := time.Now()
	doneAt := watchDone(t, start, la.Done())
	srv.Pause()
	eventually(t, 5*time.Second, "holder self-fences while Redis is paused", func() bool { return isClosed(la.Done()) })
	time.Sleep(a.cfg.TTL) // keep Redis frozen past the TTL: the fault itself, not a wait for a condition
	srv.Resume()
	// Every session fenced during the pause; the successor is a new one.
	b := newSession(t, newClient(t, srv.Addr()), testConfig(""))
	_, claimCall := takeOver(t, b, key, start)
	if d := doneAt.Load(); d < 0 || time.Duration(d) >= claimCall {
		t.Fatalf("holder fenced at %v, successor's claim started at %v", time.Duration(d), claimCall)
	}
}

// A short hiccup (latency well under the deadline) must not fence.
func TestNoFenceOnShortLatency(t *testing.T) {
	srv, direct := startRedis(t)
	proxy := newFaultProxy(t, srv.Addr())
	a := newSession(t, newClient(t, proxy.Addr()), testConfig(""))
	endGrace(t, direct, "")
	la := claimOK(t, a, ShardKey{ID: 0, Count: 1})
	proxy.SetLatency(30 * time.Millisecond)
	// Let several renews go through the slow link.
	renews := 0
	last := a.view.Load()
	eventually(t, 3*time.Second, "five renews through the slow link", func() bool {
		if v := a.view.Load(); v != last {
			renews++
			last = v
		}
		return renews >= 5
	})
	if isClosed(la.Done()) {
		t.Fatalf("fenced on 30ms latency: %v", la.Err())
	}
}

// Connection resets that heal at once (go-redis redials) neither fence the
// session nor break its writes.
func TestSurvivesConnectionResets(t *testing.T) {
	srv, direct := startRedis(t)
	proxy := newFaultProxy(t, srv.Addr())
	a := newSession(t, newClient(t, proxy.Addr()), testConfig(""))
	endGrace(t, direct, "")
	l := claimOK(t, a, ShardKey{ID: 0, Count: 1})
	for range 5 {
		proxy.Reset()
		before := a.view.Load()
		eventually(t, 2*time.Second, "a renew after a reset", func() bool { return a.view.Load() != before })
	}
	if isClosed(l.Done()) {
		t.Fatalf("fenced by resets: %v", l.Err())
	}
	if ok, err := l.Valid(testCtx(t)); err != nil || !ok {
		t.Fatalf("Valid after resets: %v, %v", ok, err)
	}
}
