package worker

import (
	"runtime"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
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

// TestShardMetricsKeepTheirLabels: the per-shard series carry the shard's
// labels and values, and a second scrape reuses the first one's label
// pairs (a scrape of 1000 shards made 1.8 MB of them anew: docs/benchmarks.md,
// issue 16 fifth round).
func TestShardMetricsKeepTheirLabels(t *testing.T) {
	const shards = 3
	h := newHarness(t, shards)
	r := h.start(h.config("m", shards))
	eventually(t, "every shard READY", 30*time.Second, func() bool { return readyShards(r) == shards })
	scrape := func() map[string]*dto.LabelPair {
		families, err := r.w.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		pairs := map[string]*dto.LabelPair{}
		for _, f := range families {
			if f.GetName() != "shardfleet_shard_ready" && f.GetName() != "shardfleet_shard_latency_seconds" {
				continue
			}
			for _, m := range f.GetMetric() {
				var key string
				for _, l := range m.GetLabel() {
					key += l.GetName() + "=" + l.GetValue() + ","
				}
				if f.GetName() == "shardfleet_shard_ready" && m.GetGauge().GetValue() != 1 {
					t.Errorf("%s %s = %v, want 1", f.GetName(), key, m.GetGauge().GetValue())
				}
				pairs[f.GetName()+"{"+key+"}"] = m.GetLabel()[0]
			}
		}
		return pairs
	}
	first, second := scrape(), scrape()
	if len(first) != 2*shards {
		t.Fatalf("%d per-shard series, want %d: %v", len(first), 2*shards, first)
	}
	for _, want := range []string{"shardfleet_shard_ready{shard_count=3,shard_id=2,status=ready,}", "shardfleet_shard_latency_seconds{shard_count=3,shard_id=0,}"} {
		if first[want] == nil {
			t.Errorf("no series %s in %v", want, first)
		}
	}
	for k, p := range first {
		if second[k] != p {
			t.Errorf("series %s: the second scrape made its labels anew", k)
		}
	}
}
