package worker

import (
	"log/slog"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/internal/testutil"
)

// A new fleet's worker waits out the data-loss probe: meanwhile it is not
// ready and its status names the wait, the shards it holds back and the time
// left; it logs when the wait starts and ends. Then it runs every shard and
// waits for nothing.
func TestFleetReportsItsWait(t *testing.T) {
	h := newHarness(t, 2)
	cfg := h.config("w-wait", 2)
	// A probe long enough to be seen: RenewInterval 1 s.
	cfg.Lease.TTL, cfg.Lease.RenewInterval, cfg.Lease.RenewDeadline = 6*time.Second, time.Second, 3*time.Second
	cfg.Lease.DataLossGrace = cfg.Lease.TTL + cfg.Lease.RenewDeadline
	var logs testutil.LogBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	r := h.start(cfg)
	var seen Wait
	eventually(t, "the worker to report the data-loss probe", 5*time.Second, func() bool {
		st := r.w.Status()
		for _, wt := range st.Waiting {
			if wt.Reason == lease.GraceReason && wt.LeftMS > 0 && wt.Shards == 2 {
				if st.Ready || r.w.Ready() {
					t.Fatalf("ready while waiting: %+v", st)
				}
				seen = wt
				return true
			}
		}
		return false
	})
	if seen.LeftMS > 1200 {
		t.Errorf("%v left of the probe, want at most RenewInterval + margin", time.Duration(seen.LeftMS)*time.Millisecond)
	}
	eventually(t, "every shard ready and no wait", 10*time.Second, func() bool {
		st := r.w.Status()
		return st.Ready && len(st.Waiting) == 0 && readyShards(r) == 2
	})
	if st := r.w.Status(); !st.Ready {
		t.Fatalf("not ready after the wait: %+v", st)
	}
	for _, want := range [][]string{{`msg="lease: waiting; not claiming"`, `wait=`}, {`msg="lease: wait over; claiming"`, `waited=1.`},
		{`msg=waiting`, `reason="identify pacing`}, {`msg="wait over"`, `reason="identify pacing`, `waited=`}} {
		if !testutil.HasLine(logs.String(), want...) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
}
