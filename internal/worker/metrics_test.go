package worker

import (
	"runtime"
	"testing"
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
