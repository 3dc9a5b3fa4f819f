package worker

import (
	"net/url"
	"strings"
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

// A shard whose open fails for a reason that passes (here: the gateway is
// unreachable and the gateway does not reconnect by itself) is retried until
// it is READY, instead of staying "opening" under a live lease.
func TestFleetRetriesAFailedOpen(t *testing.T) {
	h := newHarness(t, 1)
	u, err := url.Parse(h.fake.GatewayURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := faultproxy.New(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	proxy.Refuse()
	cfg := h.config("w1", 1)
	u.Host = proxy.Addr()
	cfg.GatewayURL = u.String()
	cfg.GatewayOptions = append(cfg.GatewayOptions, gateway.WithAutoReconnect(false))
	w1 := h.start(cfg)
	eventually(t, "a second open attempt after the first failed", 20*time.Second, func() bool {
		accepted, _ := proxy.Stats()
		return accepted >= 2
	})
	proxy.Heal()
	eventually(t, "the shard READY once the gateway is reachable", 20*time.Second, func() bool {
		return readyShards(w1) == 1
	})
}

// A shard refused an identify permit because the daily budget is at its
// floor stops, loudly, instead of reconnecting to ask again and again.
func TestFleetStopsAtTheBudgetFloor(t *testing.T) {
	h := newHarness(t, 1, gatewaytest.WithSessionStartLimit(5, time.Hour))
	cfg := h.config("w1", 1)
	cfg.ShardCount, cfg.MaxConcurrency = 0, 0 // discover, which seeds the budget (5 < reserve 10)
	w1 := h.start(cfg)
	eventually(t, "the shard reported fatal for the budget floor", 20*time.Second, func() bool {
		ss := w1.w.Status().Shards
		return len(ss) == 1 && ss[0].Status == "fatal" && strings.Contains(ss[0].Error, "budget")
	})
	eventually(t, "the shard's connection closed", 10*time.Second, func() bool { return h.fake.Stats().Connections == 0 })
	before := len(h.fake.Closes())
	// A quiet period many reconnect backoffs long: nothing may reconnect in it.
	time.Sleep(time.Second)
	if after := len(h.fake.Closes()); after != before || h.fake.Stats().Connections != 0 {
		t.Errorf("connections kept coming after the budget floor (closes %d -> %d): a reconnect loop", before, after)
	}
	if st := h.fake.Stats(); st.Identifies != 0 {
		t.Errorf("%d identifies below the budget floor", st.Identifies)
	}
}
