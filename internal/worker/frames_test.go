package worker

import (
	"testing"
	"time"
)

// TestFrameFaultsAreCounted: a bad dispatch from Discord shows up in
// shardfleet_frame_faults_total under its kind, through the hook the worker
// gives every gateway.
func TestFrameFaultsAreCounted(t *testing.T) {
	h := newHarness(t, 1)
	r := h.start(h.config("w1", 1))
	eventually(t, "the shard READY", 20*time.Second, func() bool { return readyShards(r) == 1 })
	if n := h.fake.SendRaw(0, []byte(`{"op":0,"s":-1,"t":"MESSAGE_CREATE","d":{}}`), false); n != 1 {
		t.Fatalf("raw frame reached %d connections, want 1", n)
	}
	eventually(t, "a bad_seq fault counted", 10*time.Second, func() bool { return frameFaults(t, r.w, "bad_seq") == 1 })
	if n := frameFaults(t, r.w, "no_type"); n != 0 {
		t.Fatalf("no_type = %v, want 0 (every kind is exported from the start)", n)
	}
}

// frameFaults reads shardfleet_frame_faults_total{kind} from the worker's
// registry; -1 when the series does not exist.
func frameFaults(t *testing.T, w *Worker, kind string) float64 {
	t.Helper()
	families, err := w.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "shardfleet_frame_faults_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == kind {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}
