package worker

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/faultproxy"
	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
	"github.com/shardfleet/shardfleet/pkg/sharding"
)

func TestMeteredLimiterReportsMaxConcurrency(t *testing.T) {
	w, err := New(func() Config { c := DefaultConfig(); c.Token = "t"; return c }())
	if err != nil {
		t.Fatal(err)
	}
	var l sharding.RateLimiter = w.meter(sharding.NewNoopRateLimiter(), 16)
	r, ok := l.(sharding.MaxConcurrencyReporter)
	if !ok || r.MaxConcurrency() != 16 {
		t.Fatalf("the worker's limiter does not report max_concurrency 16 (ok=%v): the manager would order buckets as if mc=1", ok)
	}
}

// gatewayProxy puts a fault proxy in front of the fake's gateway and returns
// it with the gateway URL through it. Only connections to that URL pass it:
// a RESUME goes to the session's resume URL, straight to the fake.
func gatewayProxy(t *testing.T, h *fleetHarness) (*faultproxy.Proxy, string) {
	t.Helper()
	u, err := url.Parse(h.fake.GatewayURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := faultproxy.New(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	u.Host = proxy.Addr()
	return proxy, u.String()
}

// startRetryingOpens starts worker w1 of one shard whose gateway it reaches
// through a proxy that refuses connections, with the gateway's own
// reconnects off: every open fails and the worker retries it. It returns once
// a second attempt came.
func startRetryingOpens(t *testing.T, h *fleetHarness) (*running, *faultproxy.Proxy) {
	t.Helper()
	proxy, gatewayURL := gatewayProxy(t, h)
	proxy.Refuse()
	cfg := h.config("w1", 1)
	cfg.GatewayURL = gatewayURL
	cfg.GatewayOptions = append(cfg.GatewayOptions, gateway.WithAutoReconnect(false))
	w1 := h.start(cfg)
	eventually(t, "a second open attempt after the first failed", 20*time.Second, func() bool {
		accepted, _ := proxy.Stats()
		return accepted >= 2
	})
	return w1, proxy
}

// A shard whose open fails for a reason that passes (here: the gateway is
// unreachable and the gateway does not reconnect by itself) is retried until
// it is READY, instead of staying "opening" under a live lease.
func TestFleetRetriesAFailedOpen(t *testing.T) {
	h := newHarness(t, 1)
	w1, proxy := startRetryingOpens(t, h)
	proxy.Heal()
	eventually(t, "the shard READY once the gateway is reachable", 20*time.Second, func() bool {
		return readyShards(w1) == 1
	})
}

// A shard refused an identify permit because the daily budget is at its
// floor stops, loudly, instead of reconnecting to ask again and again. While
// Discord's budget stays at the floor, every re-check reads it again (here
// first after BudgetRecheck, the stored budget having no expiry, then after
// each reset_after Discord reports) and leaves the shard stopped: no
// connection, no IDENTIFY, no spin.
func TestFleetStopsAtTheBudgetFloor(t *testing.T) {
	const resetAfter = 300 * time.Millisecond
	h := newHarness(t, 1, gatewaytest.WithSessionStartLimit(5, resetAfter)) // 5 < reserve 10 after every reset
	// A budget stored by hand, without an expiry (pkg/redislimiter's layout):
	// the refusal cannot say when it resets.
	if err := h.redis.Client(t).HSet(context.Background(), testPrefix+"idf:budget", "remaining", 5).Err(); err != nil {
		t.Fatal(err)
	}
	cfg := h.config("w1", 1)
	cfg.BudgetRecheck, cfg.BudgetResetMargin = 250*time.Millisecond, 50*time.Millisecond
	gets := countGatewayBot(&cfg)
	w1 := h.start(cfg)
	eventually(t, "the shard reported at the budget floor", 20*time.Second, func() bool {
		ss := w1.w.Status().Shards
		return len(ss) == 1 && ss[0].Status == "budget_floor" && strings.Contains(ss[0].Error, "budget") &&
			strings.Contains(ss[0].Error, "next check")
	})
	eventually(t, "the shard's connection closed", 10*time.Second, func() bool { return h.fake.Stats().Connections == 0 })
	before, getsBefore := len(h.fake.Closes()), gets.Load()
	// A quiet period many reconnect backoffs and several re-checks long:
	// nothing may reconnect in it, and the re-checks must not spin.
	time.Sleep(1500 * time.Millisecond)
	if after := len(h.fake.Closes()); after != before || h.fake.Stats().Connections != 0 {
		t.Errorf("connections kept coming after the budget floor (closes %d -> %d): a reconnect loop", before, after)
	}
	if st := h.fake.Stats(); st.Identifies != 0 {
		t.Errorf("%d identifies below the budget floor", st.Identifies)
	}
	// One GET per re-check: every 250-350 ms, so about 5 in 1.5 s.
	if n := gets.Load() - getsBefore; n < 2 || n > 12 {
		t.Errorf("%d reads of Discord's budget in 1.5 s of re-checks every 250-350 ms", n)
	}
	if ss := w1.w.Status().Shards; len(ss) != 1 || ss[0].Status != "budget_floor" {
		t.Errorf("after the re-checks: %+v, want the shard still at the budget floor", ss)
	}
}

// A shard stopped at the budget floor comes back by itself once Discord's
// budget resets, without a restart and without an IDENTIFY before the reset:
// first a shard refused while opening (the other took the last start above
// the floor), then one refused while re-identifying after an invalid session.
func TestFleetReopensAfterTheBudgetResets(t *testing.T) {
	// The budget stored at discovery expires after resetAfter: the worker must
	// have joined (about 1 s: the new fleet's data-loss grace) and opened
	// both shards by then, or the second would IDENTIFY without a budget.
	const resetAfter = 3 * time.Second
	// 11 starts with reserve 10: one IDENTIFY per reset.
	h := newHarness(t, 2, gatewaytest.WithSessionStartLimit(11, resetAfter))
	cfg := h.config("w1", 2)
	cfg.ShardCount, cfg.MaxConcurrency = 0, 0 // discover, which seeds the budget
	cfg.BudgetRecheck, cfg.BudgetResetMargin = 250*time.Millisecond, 50*time.Millisecond
	w1 := h.start(cfg)
	status := func(id int) ShardStatus {
		for _, s := range w1.w.Status().Shards {
			if s.ID == id {
				return s
			}
		}
		return ShardStatus{}
	}
	// The leases decide which shard opens first.
	first, stopped := -1, -1
	eventually(t, "one shard READY and the other at the budget floor", 20*time.Second, func() bool {
		for id := range 2 {
			if status(id).Status == "ready" && status(1-id).Status == "budget_floor" {
				first, stopped = id, 1-id
				return true
			}
		}
		return false
	})
	if !strings.Contains(status(stopped).Error, "resets in") {
		t.Errorf("shard %d's status error %q does not say when the budget resets", stopped, status(stopped).Error)
	}
	closes := shardCloses(h.fake, stopped)
	eventually(t, "the stopped shard READY after the reset", 20*time.Second, func() bool { return readyShards(w1) == 2 })
	checkIdentifiedAfterResets(t, h.fake, resetAfter, 2)
	// Refused reopens would each cost a connection; a reconnect loop many.
	if n := shardCloses(h.fake, stopped) - closes; n > 2 {
		t.Errorf("%d connections of shard %d closed while it waited for the reset: a reconnect loop", n, stopped)
	}

	// The reopened shard took the new window's last start above the floor:
	// the other one, made to IDENTIFY again, is refused on its reconnect and
	// waits for the next reset.
	if h.fake.InvalidateSession(first, false) != 1 {
		t.Fatalf("no session of shard %d to invalidate", first)
	}
	eventually(t, "the invalidated shard at the budget floor", 20*time.Second, func() bool {
		return status(first).Status == "budget_floor"
	})
	eventually(t, "it is READY after the next reset", 20*time.Second, func() bool { return readyShards(w1) == 2 })
	checkIdentifiedAfterResets(t, h.fake, resetAfter, 3)
	select {
	case err := <-w1.done:
		t.Fatalf("Run returned (%v): the shards came back by a restart", err)
	default:
	}
	b, ok, err := w1.w.limiter.Budget(context.Background())
	if err != nil || !ok || b.Remaining != 10 {
		t.Errorf("stored budget %+v (ok=%v, err=%v), want Discord's 11 minus the IDENTIFY since the reset", b, ok, err)
	}
}

// checkIdentifiedAfterResets checks the fake's IDENTIFYs: want of them, no
// pacing violation, no token reset, and each one at least resetAfter after
// the one before (each window of the budget allows one above the floor).
func checkIdentifiedAfterResets(t *testing.T, fake *gatewaytest.Server, resetAfter time.Duration, want int) {
	t.Helper()
	ids := fake.Identifies()
	if len(ids) != want {
		t.Fatalf("%d identifies, want %d: %+v", len(ids), want, ids)
	}
	for i := 1; i < len(ids); i++ {
		if gap := ids[i].Time.Sub(ids[i-1].Time); gap < resetAfter {
			t.Errorf("IDENTIFY of shard %d only %v after the previous one, before the budget reset (%v)",
				ids[i].ShardID, gap, resetAfter)
		}
	}
	if st := fake.Stats(); st.IdentifyViolations != 0 || st.TokenResets != 0 || st.DuplicateSessions != 0 ||
		st.SessionStartRemaining != 10 {
		t.Errorf("fake after the reset: %+v; want no violation, no token reset, 10 starts left", st)
	}
}

func shardCloses(fake *gatewaytest.Server, shardID int) int {
	n := 0
	for _, c := range fake.Closes() {
		if c.ShardID == shardID {
			n++
		}
	}
	return n
}

// countGatewayBot makes cfg's HTTP client count its GET /gateway/bot requests.
func countGatewayBot(cfg *Config) *atomic.Int64 {
	n := new(atomic.Int64)
	base := cfg.HTTPClient.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c := *cfg.HTTPClient
	c.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.HasSuffix(r.URL.Path, "/gateway/bot") {
			n.Add(1)
		}
		return base.RoundTrip(r)
	})
	cfg.HTTPClient = &c
	return n
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A shard revoked while its open is failing and being retried is never opened
// again by this worker: before the fix, the retry loop woke after its backoff
// and opened the shard after the handoff, so it was served twice (once here,
// unleased and writing nowhere, once by the next owner).
func TestRevokeStopsAnOpenBeingRetried(t *testing.T) {
	h := newHarness(t, 1)
	w1, proxy := startRetryingOpens(t, h)
	var run *shardRun
	w1.w.mu.RLock()
	for _, r := range w1.w.shards {
		run = r
	}
	w1.w.mu.RUnlock()
	if run == nil {
		t.Fatal("no shard run while its open is retried")
	}
	// What the lease session does on a planned move, short of releasing the
	// lease afterwards: that keeps the lease (and so the old retry loop)
	// alive as long as the window lasts.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := w1.w.Revoke(ctx, run.lease); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	proxy.Heal()
	before, _ := proxy.Stats()
	// Longer than the longest retry backoff (openRetryMax), so a retry loop
	// that survived the handoff would have dialed by the end of it.
	window := openRetryMax + time.Second
	deadline := time.Now().Add(window)
	for time.Now().Before(deadline) {
		if accepted, _ := proxy.Stats(); accepted != before {
			t.Fatalf("the worker dialed the gateway again after handing the shard off (%d -> %d connections)", before, accepted)
		}
		if n := readyShards(w1); n != 0 {
			t.Fatalf("%d shards READY after the handoff", n)
		}
		time.Sleep(20 * time.Millisecond) // observing that nothing happens for a window
	}
	if st := h.fake.Stats(); st.LiveSessions != 0 || st.Identifies != 0 {
		t.Fatalf("fake: %d live sessions, %d identifies after the handoff", st.LiveSessions, st.Identifies)
	}
}
