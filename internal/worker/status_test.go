package worker

import (
	"encoding/json"
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// TestStatusPublicationReusesItsArrays: statusLoop publishes the status of
// every shard every StatusInterval; on an idle worker that was most of the
// garbage (docs/benchmarks.md, issue 16 fifth round). A publication after
// the first must allocate much less than the JSON it produces, and still be
// the whole status, shard by shard.
func TestStatusPublicationReusesItsArrays(t *testing.T) {
	const shards = 24
	h := newHarness(t, shards)
	r := h.start(h.config("pub", shards))
	eventually(t, "every shard READY", 30*time.Second, func() bool { return readyShards(r) == shards })

	var pub statusPublisher
	first := pub.encode(r.w)
	size := len(first)
	shardsArray := unsafe.SliceData(pub.shards)
	if again := pub.encode(r.w); unsafe.SliceData(again) != unsafe.SliceData(first) || unsafe.SliceData(pub.shards) != shardsArray {
		t.Fatal("a second publication did not reuse the first one's arrays")
	}
	const n = 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		pub.encode(r.w)
	}
	runtime.ReadMemStats(&after)
	// TotalAlloc counts the worker's other goroutines too (heartbeats every
	// 500 ms here): a small share of n publications' time. Not under -race,
	// which drops a quarter of encoding/json's pooled buffers.
	per := float64(after.TotalAlloc-before.TotalAlloc) / n
	t.Logf("a publication allocates %.0f bytes for %d bytes of JSON", per, size)
	if per > float64(size)/4 && !raceBuild {
		t.Errorf("a publication allocates %.0f bytes, for %d bytes of JSON: its arrays are not reused", per, size)
	}

	var st Status
	if err := json.Unmarshal(pub.encode(r.w), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Shards) != shards || st.WorkerID != "pub" || st.Mode != "fleet" {
		t.Fatalf("published %d shards of worker %q (%s), want %d of \"pub\" (fleet)", len(st.Shards), st.WorkerID, st.Mode, shards)
	}
	for i, s := range st.Shards {
		if s.ID != i || s.Count != shards || s.Status != "ready" || s.LeaseToken == 0 {
			t.Errorf("shard %d published as %+v", i, s)
		}
	}
}
