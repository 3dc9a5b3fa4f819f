package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardfleet/shardfleet/internal/eventsink"
	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/redislimiter"
	"github.com/shardfleet/shardfleet/pkg/sharding"
)

// Worker runs one process's shards. Create it with New, then call Run once.
// Status, Ready and Registry are safe to call from any goroutine at any time.
type Worker struct {
	cfg     Config
	log     *slog.Logger
	m       *metrics
	started time.Time

	// Set once by Run before any shard starts, read-only afterwards.
	mgr     sharding.FleetShardManager
	sink    *eventsink.Sink
	keys    lease.Keys // the fleet's keys, split into its partitions
	limiter *redislimiter.Limiter
	backlog *gateway.BacklogBudget        // every shard's dispatches held in memory (backlog.go)
	session atomic.Pointer[lease.Session] // the current fleet session; replaced on rejoin

	mu       sync.RWMutex
	shards   map[lease.ShardKey]*shardRun // fleet mode: shards whose lease we hold
	fatalErr error                        // token rejected: open nothing more
	runErr   error                        // why Run could not start, for /status

	// budgetWake (buffer 1) tells the budget loop that a shard stopped at
	// the identify budget floor (see budget.go).
	budgetWake chan struct{}

	wg      sync.WaitGroup // the status and budget loops, splits, budget-floor stops, local opens
	shardWG sync.WaitGroup // fleet shards not yet stopped (Acquired to stopShard)
	events  atomic.Uint64
	mgrSet  atomic.Bool

	queue      *identifyQueue // shards waiting for an IDENTIFY permit (wait.go)
	quietUntil atomic.Int64   // unix ns: end of the limiter's quiet period, as last sampled
}

// New validates cfg and returns a Worker.
func New(cfg Config) (*Worker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	w := &Worker{cfg: cfg, started: time.Now(), shards: map[lease.ShardKey]*shardRun{},
		budgetWake: make(chan struct{}, 1), backlog: gateway.NewBacklogBudget(cfg.BacklogWorkerBytes)}
	w.log = cfg.Logger.With("worker_id", cfg.WorkerID)
	reloadSlotsOnFailure(cfg.Redis)
	w.queue = &identifyQueue{log: w.log}
	w.m = newMetrics(w)
	return w, nil
}

// Registry is the worker's Prometheus registry: every series. Gatherer
// gathers the same for /metrics with less garbage per scrape.
func (w *Worker) Registry() *prometheus.Registry { return w.m.registry }

// Run runs the shards until ctx ends, then stops gracefully within
// Config.ShutdownTimeout: in fleet mode every shard is handed off (session
// saved under its lease, lease released) so other workers RESUME it; in local
// mode every shard is closed. It returns nil after a clean stop.
func (w *Worker) Run(ctx context.Context) error {
	var err error
	if w.cfg.Redis == nil {
		err = w.runLocal(ctx)
	} else {
		err = w.runFleet(ctx)
	}
	if errors.Is(err, ErrTokenRejected) {
		// Found by GET /gateway/bot: behave as after a 4004, stay up with
		// no shards until stopped.
		<-ctx.Done()
		return nil
	}
	if err != nil {
		w.mu.Lock()
		w.runErr = err
		w.mu.Unlock()
	}
	return err
}

// shutdownContext bounds the graceful stop; it is fresh, not derived from
// Run's ctx, which has ended by then.
func (w *Worker) shutdownContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), w.cfg.ShutdownTimeout)
}

func (w *Worker) managerOptions(limiter sharding.RateLimiter, count int) []sharding.ConfigOpt {
	gw := []gateway.ConfigOpt{gateway.WithFrameFaultHook(w.onFrameFault)}
	if w.cfg.Presence != nil {
		gw = append(gw, gateway.WithPresence(*w.cfg.Presence))
	}
	if w.cfg.Redis != nil {
		gw = append(gw, gateway.WithPresenceSource(w.fleetPresence))
	}
	if w.cfg.GatewayURL != "" {
		gw = append(gw, gateway.WithURL(w.cfg.GatewayURL))
	}
	gw = append(append(gw, w.backlogOptions()...), w.cfg.GatewayOptions...)
	return []sharding.ConfigOpt{
		sharding.WithLogger(w.log),
		sharding.WithGatewayCreateFunc(gateway.New),
		sharding.WithShardCount(count),
		sharding.WithAPIURL(w.cfg.APIURL),
		sharding.WithHTTPClient(w.cfg.HTTPClient),
		sharding.WithRateLimiter(limiter),
		sharding.WithGatewayConfigOpts(gw...),
		sharding.WithCloseHandler(w.onClose),
	}
}

// runLocal runs every shard of the bot in this process.
func (w *Worker) runLocal(ctx context.Context) error {
	mc := w.cfg.MaxConcurrency
	count := w.cfg.ShardCount
	if mc == 0 || count == 0 {
		gb, err := sharding.FetchGatewayBot(ctx, w.cfg.HTTPClient, w.cfg.APIURL, w.cfg.Token)
		if err != nil {
			return w.discoveryError(err)
		}
		if mc == 0 {
			mc = gb.SessionStartLimit.MaxConcurrency
		}
		if count == 0 {
			count = gb.Shards
		}
		w.m.budget.Set(float64(gb.SessionStartLimit.Remaining))
	}
	limiter := sharding.NewRateLimiter(sharding.WithMaxConcurrency(mc),
		sharding.WithIdentifyWait(w.cfg.IdentifyWindow), sharding.WithIdentifyMargin(w.cfg.IdentifyMargin),
		sharding.WithRateLimiterLogger(w.log))
	mgr, err := sharding.NewFleet(w.cfg.Token, w.onEvent, w.managerOptions(w.meter(limiter, mc), count)...)
	if err != nil {
		limiter.Close(context.Background())
		return fmt.Errorf("shard manager: %w", err)
	}
	w.mgr = mgr
	w.mgrSet.Store(true)
	w.log.Info("local mode: opening shards", "shard_count", count, "max_concurrency", mc)

	openCtx, cancelOpen := context.WithCancel(ctx)
	w.wg.Go(func() {
		if err := mgr.OpenAll(openCtx); err != nil && openCtx.Err() == nil {
			w.log.Error("some shards failed to open", "err", err)
		}
	})
	<-ctx.Done()
	cancelOpen()
	sdCtx, cancel := w.shutdownContext()
	defer cancel()
	mgr.Close(sdCtx)
	limiter.Close(sdCtx)
	w.wg.Wait()
	return nil
}

// onEvent is every shard's event handler; it runs on the shard's event
// goroutine, one call at a time per shard.
func (w *Worker) onEvent(g gateway.Gateway, t gateway.EventType, seq int, data json.RawMessage) {
	w.events.Add(1)
	w.m.eventsReceived.Inc()
	if w.sink != nil {
		w.mu.RLock()
		run := w.shards[lease.ShardKey{ID: g.ShardID(), Count: g.ShardCount()}]
		w.mu.RUnlock()
		if run == nil {
			// Rare: the old gateway of a shard whose lease ended, still
			// delivering after stopShard let it go.
			w.m.eventsDropped.Inc()
			w.logDropped(lease.ShardKey{ID: g.ShardID(), Count: g.ShardCount()}, t, seq, errNoLease)
		} else {
			w.add(run, t, seq, data)
		}
	}
	if w.sink == nil && w.cfg.EventHandler != nil {
		w.handleDelivered(g, t, seq, data)
	}
}

// onClose is told when a shard stops for good (fatal close code).
func (w *Worker) onClose(g gateway.Gateway, err error, _ bool) {
	key := lease.ShardKey{ID: g.ShardID(), Count: g.ShardCount()}
	w.fatalClose(key, err)
}

// fatalClose records a shard stopped by a fatal close. 4004 is token-wide.
func (w *Worker) fatalClose(key lease.ShardKey, err error) {
	code := gateway.CloseStatus(err)
	w.mu.Lock()
	// Both the close handler and a failed open report a close that ends an
	// open: count and log it once.
	if run := w.shards[key]; run != nil {
		if run.fatal != nil {
			w.mu.Unlock()
			return
		}
		run.fatal = err
	}
	w.m.fatal.Inc()
	if code == gateway.CloseAuthenticationFailed && w.fatalErr == nil {
		w.fatalErr = fmt.Errorf("%w: %w", ErrTokenRejected, err)
	}
	w.mu.Unlock()
	w.log.Error("shard stopped by a fatal close; not reconnecting", "shard_id", key.ID, "shard_count", key.Count,
		"close_code", code, "err", err)
	if code == gateway.CloseShardingRequired && w.session.Load() != nil {
		w.wg.Go(func() { w.split(key) })
	}
}

// split records a 4011 split of key in the fleet layout; Run then moves the
// leases to the new shards.
func (w *Worker) split(key lease.ShardKey) {
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.ShutdownTimeout)
	defer cancel()
	layout, err := w.session.Load().SplitShard(ctx, key, sharding.ShardSplitCount)
	if err != nil {
		w.log.Error("split shard after 4011", "shard_id", key.ID, "err", err)
		return
	}
	w.log.Warn("shard split after 4011", "shard_id", key.ID, "shard_count", key.Count, "layout_version", layout.Version)
}

// discoveryError is the error of a failed GET /gateway/bot. A 401 rejects
// the token as a 4004 does: it becomes the worker's fatal error (logged here,
// once) and Run stays up without shards.
func (w *Worker) discoveryError(err error) error {
	if !errors.Is(err, sharding.ErrUnauthorized) {
		return fmt.Errorf("discover shard count: %w", err)
	}
	w.mu.Lock()
	if w.fatalErr == nil {
		w.fatalErr = fmt.Errorf("%w: %w", ErrTokenRejected, err)
	}
	fatal := w.fatalErr
	w.mu.Unlock()
	w.log.Error("opening no shard until restarted", "err", fatal)
	return fatal
}

// FatalError is the token-wide fatal error (4004, or 401 from GET
// /gateway/bot), or nil.
func (w *Worker) FatalError() error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.fatalErr
}
