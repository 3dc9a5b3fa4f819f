package worker

import (
	"runtime"
	"testing"
)

// TestMetricsShowTheLiveHeap: /metrics has the heap the last GC marked live
// (BenchmarkScale2000 breaks an idle shard's memory down with it).
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
	for _, f := range families {
		if f.GetName() == "go_gc_heap_live_bytes" {
			if v := f.GetMetric()[0].GetGauge().GetValue(); v <= 0 {
				t.Fatalf("go_gc_heap_live_bytes = %v after a GC, want > 0", v)
			}
			return
		}
	}
	t.Fatal("no go_gc_heap_live_bytes in the worker's metrics")
}
