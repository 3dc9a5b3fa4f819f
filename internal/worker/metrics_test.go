package worker

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// TestMetricsShowTheLiveHeap: /metrics has the heap the last GC marked live
// and the stacks it scanned (BenchmarkScale2000 breaks an idle shard's
// memory down with them).
func TestMetricsShowTheLiveHeap(t *testing.T) {
	h := newHarness(t, 1)
	w, err := New(h.config("w1", 1))
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	families, err := w.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"go_gc_heap_live_bytes": true, "go_gc_scan_stack_bytes": true}
	for _, f := range families {
		if want[f.GetName()] {
			if v := f.GetMetric()[0].GetGauge().GetValue(); v <= 0 {
				t.Errorf("%s = %v after a GC, want > 0", f.GetName(), v)
			}
			delete(want, f.GetName())
		}
	}
	for name := range want {
		t.Errorf("no %s in the worker's metrics", name)
	}
}

// TestShardMetricsAreKept: the per-shard series carry the shard's labels
// and values, Gatherer gives the same shardfleet_* series as Registry, and a
// second scrape of shards whose status and latency did not change reuses the
// first one's series (through a registry, a scrape of 1000 shards allocated
// about 740 bytes per shard: docs/benchmarks.md, issue 16 sixth round).
func TestShardMetricsAreKept(t *testing.T) {
	const shards = 3
	// Heartbeats far apart: no latency changes between the scrapes.
	h := newHarness(t, shards, gatewaytest.WithHeartbeatInterval(41250*time.Millisecond))
	r := h.start(h.config("m", shards))
	eventually(t, "every shard READY", 30*time.Second, func() bool { return readyShards(r) == shards })
	scrape := func(g prometheus.Gatherer) map[string]*dto.Metric {
		t.Helper()
		families, err := g.Gather()
		if err != nil {
			t.Fatal(err)
		}
		series := map[string]*dto.Metric{}
		for _, f := range families {
			if !strings.HasPrefix(f.GetName(), "shardfleet_shard") {
				continue
			}
			for _, m := range f.GetMetric() {
				key := f.GetName() + "{"
				for _, l := range m.GetLabel() {
					key += l.GetName() + "=" + l.GetValue() + ","
				}
				series[key+"}"] = m
			}
		}
		return series
	}
	first, second, viaRegistry := scrape(r.w.Gatherer()), scrape(r.w.Gatherer()), scrape(r.w.Registry())
	if len(first) != 2*shards+1 {
		t.Fatalf("%d shardfleet_shard* series, want %d: %v", len(first), 2*shards+1, first)
	}
	for key, want := range map[string]float64{
		"shardfleet_shards_owned{}":                                      shards,
		"shardfleet_shard_ready{shard_count=3,shard_id=2,status=ready,}": 1,
		"shardfleet_shard_latency_seconds{shard_count=3,shard_id=0,}":    -1, // any value
	} {
		m := first[key]
		switch {
		case m == nil:
			t.Errorf("no series %s in %v", key, first)
		case want >= 0 && m.GetGauge().GetValue() != want:
			t.Errorf("%s = %v, want %v", key, m.GetGauge().GetValue(), want)
		}
	}
	for key, m := range first {
		if v := viaRegistry[key]; v == nil || v.GetGauge().GetValue() != m.GetGauge().GetValue() {
			t.Errorf("series %s: %v through Gatherer, %v through Registry", key, m, v)
		}
		if key != "shardfleet_shards_owned{}" && second[key] != m {
			t.Errorf("series %s: the second scrape made it anew", key)
		}
	}
	if len(viaRegistry) != len(first) {
		t.Errorf("%d series through Registry, %d through Gatherer", len(viaRegistry), len(first))
	}
}

// TestShardSeriesRefreshAllocatesPerScrapeNotPerShard: refreshing unchanged
// shards allocates the two result slices, whatever the number of shards.
func TestShardSeriesRefreshAllocatesPerScrapeNotPerShard(t *testing.T) {
	const shards = 8
	h := newHarness(t, shards, gatewaytest.WithHeartbeatInterval(41250*time.Millisecond))
	r := h.start(h.config("m", shards))
	eventually(t, "every shard READY", 30*time.Second, func() bool { return readyShards(r) == shards })
	s := r.w.m.shards
	s.refresh()
	if allocs := testing.AllocsPerRun(20, func() { s.refresh() }); allocs > 3 {
		t.Errorf("a refresh of %d unchanged shards made %v allocations, want at most 3", shards, allocs)
	}
}

// TestMetricsServeWithoutShards: a worker that runs no shard yet (or holds
// none of the fleet's) serves /metrics in full; the encoder refuses an
// empty family, so Gatherer must leave the per-shard ones out.
func TestMetricsServeWithoutShards(t *testing.T) {
	h := newHarness(t, 1)
	w, err := New(h.config("w1", 1))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(w.Gatherer(), promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(body, "\nshardfleet_shards_owned 0\n") {
		t.Fatalf("/metrics of a worker with no shards: %d\n%s", rec.Code, body)
	}
	if strings.Contains(body, "shardfleet_shard_ready") {
		t.Errorf("per-shard series without shards:\n%s", body)
	}
}
