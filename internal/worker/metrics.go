package worker

import (
	"regexp"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the worker's Prometheus metrics, in a registry of its own (so
// tests and several workers in one process never clash).
type metrics struct {
	registry *prometheus.Registry // every series (Worker.Registry)
	base     *prometheus.Registry // every series but the per-shard ones (Worker.Gatherer adds them)
	shards   *shardSeries

	leasesWon, leasesLost, handoffs prometheus.Counter
	identifies, resumes, fatal      prometheus.Counter
	identifyWait                    prometheus.Histogram
	budget                          prometheus.Gauge
	eventsReceived, eventsDropped   prometheus.Counter
	rollbacks, rollbackLost         prometheus.Counter
	cacheRebuilds                   prometheus.Counter
	frameFaults                     *prometheus.CounterVec // frames.go
	commands                        *prometheus.CounterVec // commands.go
	redisErrors                     atomic.Uint64          // status publishing etc.; the sink counts its own
}

func newMetrics(w *Worker) *metrics {
	m := &metrics{registry: prometheus.NewRegistry(), base: prometheus.NewRegistry(), shards: newShardSeries(w)}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "shardfleet", Name: name, Help: help})
	}
	m.leasesWon = counter("leases_won_total", "Shard leases this worker acquired.")
	m.leasesLost = counter("leases_lost_total", "Shard leases lost without a handoff (expired, taken over, self-fenced, fenced write).")
	m.handoffs = counter("handoffs_total", "Shards handed off with their session saved (rebalance, shutdown).")
	m.identifies = counter("identifies_total", "IDENTIFY permits taken from the identify limiter.")
	m.resumes = counter("resumes_total", "Shards opened from a saved session (RESUME instead of IDENTIFY).")
	m.fatal = counter("fatal_closes_total", "Shards stopped by a fatal close code (4004, 4010-4014).")
	m.eventsReceived = counter("events_received_total", "Dispatches handed to the worker's handler (frames_read_total counts those read).")
	m.eventsDropped = counter("events_dropped_total", "Dispatches the worker could not hand to a shard's writer (lease not held, writer stopped): left for the next RESUME to replay.")
	m.rollbacks = counter("redis_rollbacks_total", "Shards whose committed events Redis lost (failover to a lagging replica), reopened to RESUME from the durable seq.")
	m.rollbackLost = counter("redis_rollback_sessions_lost_total", "Rolled-back shards Discord could not replay to: a new session started, the lost events are gone.")
	m.cacheRebuilds = counter("cache_rebuilds_total", "Shards whose cache Redis lost with its data (a lost session record), reopened with a new session whose GUILD_CREATEs rebuild it.")
	m.identifyWait = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "shardfleet", Name: "identify_wait_seconds",
		Help: "Time spent waiting for an identify permit.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)})
	m.budget = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "shardfleet", Name: "identify_budget_remaining",
		Help: "Session starts left in the fleet's daily budget (-1: unknown)."})
	m.budget.Set(-1)
	m.frameFaults = newFrameFaults()
	m.commands = newCommandOutcomes()
	shared := []prometheus.Collector{m.leasesWon, m.leasesLost, m.handoffs, m.identifies, m.resumes, m.fatal,
		m.eventsReceived, m.eventsDropped, m.rollbacks, m.rollbackLost, m.cacheRebuilds, m.identifyWait, m.budget,
		m.frameFaults, m.commands,
		collectors.NewGoCollector(liveHeap), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&sinkCollector{w: w, m: m}, &backlogCollector{b: w.backlog}}
	m.base.MustRegister(shared...)
	m.registry.MustRegister(shared...)
	m.registry.MustRegister(shardCollector{m.shards})
	return m
}

// liveHeap adds go_gc_heap_live_bytes (the heap the last GC marked live)
// and go_gc_scan_stack_bytes (the goroutine stacks it scanned: in use, where
// go_memstats_stack_inuse_bytes counts them allocated) to the Go collector's
// figures: the heap in use also counts garbage not yet swept, and an idle
// worker, which allocates little, collects seldom (the runtime forces a GC
// every 2 minutes), so only these say what its shards hold.
var liveHeap = collectors.WithGoCollectorRuntimeMetrics(collectors.GoRuntimeMetricsRule{
	Matcher: regexp.MustCompile(`^/gc/(heap/live|scan/stack):bytes$`)})

// sinkCollector reports the event sink's counters.
type sinkCollector struct {
	w *Worker
	m *metrics
}

var (
	descCommitted   = prometheus.NewDesc("shardfleet_events_committed_total", "Dispatches committed to the Redis stream.", nil, nil)
	descDuplicates  = prometheus.NewDesc("shardfleet_events_duplicate_total", "Dispatches skipped as already committed (replays).", nil, nil)
	descRedisErrors = prometheus.NewDesc("shardfleet_redis_errors_total", "Failed Redis calls of the worker (retried).", nil, nil)
	descLostRecords = prometheus.NewDesc("shardfleet_redis_lost_session_records_total",
		"Session records Redis lost under their writer (data loss): the stream lacks those sessions' earlier events.", nil, nil)
	descCacheErrors = prometheus.NewDesc("shardfleet_cache_errors_total",
		"Committed dispatches whose state-cache change failed (a corrupt or foreign value under a cache key).", nil, nil)
)

func (c *sinkCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descCommitted
	ch <- descDuplicates
	ch <- descRedisErrors
	ch <- descLostRecords
	ch <- descCacheErrors
}

func (c *sinkCollector) Collect(ch chan<- prometheus.Metric) {
	var committed, dups, errs, lost, cacheErrs uint64
	// w.sink is set before mgrSet, so it is read only after mgrSet is seen set.
	if c.w.mgrSet.Load() {
		if sink := c.w.sink; sink != nil {
			st := sink.Stats()
			committed, dups, errs, lost, cacheErrs = st.Committed, st.Duplicates, st.RedisErrors, st.LostRecords, st.CacheErrors
		}
	}
	errs += c.m.redisErrors.Load()
	ch <- prometheus.MustNewConstMetric(descCommitted, prometheus.CounterValue, float64(committed))
	ch <- prometheus.MustNewConstMetric(descDuplicates, prometheus.CounterValue, float64(dups))
	ch <- prometheus.MustNewConstMetric(descRedisErrors, prometheus.CounterValue, float64(errs))
	ch <- prometheus.MustNewConstMetric(descLostRecords, prometheus.CounterValue, float64(lost))
	ch <- prometheus.MustNewConstMetric(descCacheErrors, prometheus.CounterValue, float64(cacheErrs))
}
