package worker

import (
	"cmp"
	"slices"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/shardfleet/shardfleet/internal/keyspace"
)

// The per-shard series (shardfleet_shard_ready, shardfleet_shard_latency_seconds)
// and shardfleet_shards_owned. Through a prometheus.Registry every series
// costs a scrape a dto.Metric, a hash and its checks: a scrape of 1000
// shards allocated about 740 bytes per shard (225 through Gatherer), which
// took an idle worker scraped every 15 s up to its GC's goal
// (docs/benchmarks.md, issue 16 sixth round). So
// shardSeries keeps each shard's series as exposition objects, made again
// only when the shard's status or latency changes, and Worker.Gatherer
// hands them to /metrics beside a registry of every other series. Registry
// still has them too, through shardCollector, for a program that serves it.

// shardSeries keeps each shard's series between scrapes. A kept dto.Metric
// is never written again once made, so concurrent scrapes share it.
type shardSeries struct {
	w *Worker

	mu       sync.Mutex // one refresh at a time
	byKey    map[keyspace.ShardKey]*shardMetrics
	statuses []ShardStatus // the last refresh's, reused
	scrape   uint64        // refreshes; shardMetrics.seen is the last that listed the shard
}

// shardMetrics is one shard's two series.
type shardMetrics struct {
	status    string
	latencyMS float64
	ready     *dto.Metric // shard_count, shard_id, status
	latency   *dto.Metric // shard_count, shard_id
	seen      uint64
}

var (
	descOwned   = prometheus.NewDesc(nameOwned, helpOwned, nil, nil)
	descStatus  = prometheus.NewDesc(nameReady, helpReady, []string{labelShardID, labelShardCount, labelStatus}, nil)
	descLatency = prometheus.NewDesc(nameLatency, helpLatency, []string{labelShardID, labelShardCount}, nil)

	// The names and help texts, for the descriptors and for the families
	// Gatherer makes (which point at them).
	nameOwned, helpOwned     = "shardfleet_shards_owned", "Shards this worker runs."
	nameReady, helpReady     = "shardfleet_shard_ready", "1 when the shard is READY, else 0."
	nameLatency, helpLatency = "shardfleet_shard_latency_seconds", "Last heartbeat round trip."
	gaugeType                = dto.MetricType_GAUGE

	// The per-shard label names, for the descriptors and for the kept
	// label pairs (which point at them).
	labelShardCount, labelShardID, labelStatus = "shard_count", "shard_id", "status"
)

func newShardSeries(w *Worker) *shardSeries {
	return &shardSeries{w: w, byKey: make(map[keyspace.ShardKey]*shardMetrics)}
}

// gaugeMetric makes a gauge's exposition object.
func gaugeMetric(labels []*dto.LabelPair, v float64) *dto.Metric {
	return &dto.Metric{Label: labels, Gauge: &dto.Gauge{Value: &v}}
}

func newShardMetrics(s ShardStatus) *shardMetrics {
	count, id, status := strconv.Itoa(s.Count), strconv.Itoa(s.ID), s.Status
	pair := func(name, value *string) *dto.LabelPair { return &dto.LabelPair{Name: name, Value: value} }
	latency := []*dto.LabelPair{pair(&labelShardCount, &count), pair(&labelShardID, &id)}
	ready := 0.0
	if s.Status == "ready" {
		ready = 1
	}
	return &shardMetrics{status: s.Status, latencyMS: s.LatencyMS,
		ready:   gaugeMetric(append(latency[:2:2], pair(&labelStatus, &status)), ready),
		latency: gaugeMetric(latency, s.LatencyMS/1000)}
}

// refresh reads the shards' statuses and returns their series in shard
// order: kept ones where nothing changed. The slices are the caller's.
func (s *shardSeries) refresh() (ready, latency []*dto.Metric) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statuses = s.w.shardStatuses(s.statuses) // sorted by shard
	s.scrape++
	ready, latency = make([]*dto.Metric, 0, len(s.statuses)), make([]*dto.Metric, 0, len(s.statuses))
	for _, st := range s.statuses {
		k := keyspace.ShardKey{ID: st.ID, Count: st.Count}
		m := s.byKey[k]
		switch {
		case m == nil || m.status != st.Status:
			m = newShardMetrics(st)
			s.byKey[k] = m
		case m.latencyMS != st.LatencyMS:
			m.latencyMS = st.LatencyMS
			m.latency = gaugeMetric(m.latency.Label, st.LatencyMS/1000)
		}
		m.seen = s.scrape
		ready = append(ready, m.ready)
		latency = append(latency, m.latency)
	}
	for k, m := range s.byKey {
		if m.seen != s.scrape {
			delete(s.byKey, k) // the shard left
		}
	}
	return ready, latency
}

// Gatherer gathers the worker's series, as Registry holds them, at a
// fraction of the garbage: the per-shard series come from shardSeries, not
// through a registry. It is what cmd/worker serves on /metrics. Collectors
// registered into Registry by others are not in it.
func (w *Worker) Gatherer() prometheus.Gatherer {
	return prometheus.GathererFunc(w.m.gather)
}

func (m *metrics) gather() ([]*dto.MetricFamily, error) {
	families, err := m.base.Gather()
	ready, latency := m.shards.refresh()
	n := float64(len(ready))
	families = append(families,
		&dto.MetricFamily{Name: &nameOwned, Help: &helpOwned, Type: &gaugeType, Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: &n}}}})
	if len(ready) > 0 { // an empty family is not valid exposition: leave it out, as a registry does
		families = append(families,
			&dto.MetricFamily{Name: &nameReady, Help: &helpReady, Type: &gaugeType, Metric: ready},
			&dto.MetricFamily{Name: &nameLatency, Help: &helpLatency, Type: &gaugeType, Metric: latency})
	}
	slices.SortFunc(families, func(a, b *dto.MetricFamily) int { return cmp.Compare(a.GetName(), b.GetName()) })
	return families, err
}

// shardCollector puts shardSeries' series in Registry.
type shardCollector struct{ s *shardSeries }

// keptMetric is a kept series as a prometheus.Metric.
type keptMetric struct {
	desc *prometheus.Desc
	m    *dto.Metric
}

func (k keptMetric) Desc() *prometheus.Desc { return k.desc }

func (k keptMetric) Write(out *dto.Metric) error {
	out.Label, out.Gauge = k.m.Label, k.m.Gauge
	return nil
}

func (c shardCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descOwned
	ch <- descStatus
	ch <- descLatency
}

func (c shardCollector) Collect(ch chan<- prometheus.Metric) {
	ready, latency := c.s.refresh()
	ch <- prometheus.MustNewConstMetric(descOwned, prometheus.GaugeValue, float64(len(ready)))
	for i := range ready {
		ch <- keptMetric{descStatus, ready[i]}
		ch <- keptMetric{descLatency, latency[i]}
	}
}
