package worker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// newFrameFaults makes shardfleet_frame_faults_total{kind}: the bad
// messages from Discord the gateways refused or recovered from (seq jumps,
// malformed dispatches, unreadable messages, sessions given up for them).
// Every kind starts at 0, so a rate over it works before the first fault.
func newFrameFaults() *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "shardfleet", Name: "frame_faults_total",
		Help: "Bad messages from Discord refused or recovered from, by kind (see gateway.FrameFault)."}, []string{"kind"})
	for _, k := range gateway.FrameFaults {
		v.WithLabelValues(k.String())
	}
	return v
}

// onFrameFault is every shard's gateway.FrameFaultHook.
func (w *Worker) onFrameFault(_ int, kind gateway.FrameFault) {
	w.m.frameFaults.WithLabelValues(kind.String()).Inc()
}
