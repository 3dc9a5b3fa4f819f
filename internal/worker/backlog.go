package worker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardfleet/shardfleet/internal/eventsink"
	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// backlogOptions bound every shard's queue of dispatches for the handler and
// share the worker's budget among them (see gateway.WithBacklogBytes).
func (w *Worker) backlogOptions() []gateway.ConfigOpt {
	return []gateway.ConfigOpt{gateway.WithBacklogBytes(w.cfg.BacklogShardBytes), gateway.WithBacklogBudget(w.backlog)}
}

// backlogSinkOption bounds each shard's events waiting for Redis by the same
// per-shard bound, counted in the same budget: a slow Redis blocks the
// handler, the gateway queue fills, and the shard pauses.
func (w *Worker) backlogSinkOption() eventsink.Option {
	return eventsink.WithMaxPendingBytes(int(w.cfg.BacklogShardBytes), w.backlog)
}

// backlogCollector reports the backlog budget, read at scrape time.
type backlogCollector struct{ b *gateway.BacklogBudget }

var (
	descBacklogBytes = prometheus.NewDesc("shardfleet_backlog_bytes",
		"Bytes of dispatches held between the socket and Redis (gateway queues and sink writers), all shards.", nil, nil)
	descBacklogLimit = prometheus.NewDesc("shardfleet_backlog_limit_bytes",
		"The worker's backlog budget (BACKLOG_WORKER_BYTES).", nil, nil)
	descBacklogPauses = prometheus.NewDesc("shardfleet_backlog_pauses_total",
		"Times a shard stopped reading because its backlog or the worker's was full.", nil, nil)
	descBacklogOver = prometheus.NewDesc("shardfleet_backlog_over_bound_seconds_total",
		"Time shards spent paused over a backlog bound, added when each resumes.", nil, nil)
	descFramesRead = prometheus.NewDesc("shardfleet_frames_read_total",
		"Dispatches read from the sockets; minus events_received_total, the events queued for the handler.", nil, nil)
)

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBacklogBytes, descBacklogLimit, descBacklogPauses, descBacklogOver, descFramesRead} {
		ch <- d
	}
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.b.Stats()
	ch <- prometheus.MustNewConstMetric(descBacklogBytes, prometheus.GaugeValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(descBacklogLimit, prometheus.GaugeValue, float64(st.Limit))
	ch <- prometheus.MustNewConstMetric(descBacklogPauses, prometheus.CounterValue, float64(st.Pauses))
	ch <- prometheus.MustNewConstMetric(descBacklogOver, prometheus.CounterValue, st.OverBound.Seconds())
	ch <- prometheus.MustNewConstMetric(descFramesRead, prometheus.CounterValue, float64(st.FramesRead))
}
