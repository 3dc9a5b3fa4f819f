package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardfleet/shardfleet/internal/eventsink"
	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/redislimiter"
	"github.com/shardfleet/shardfleet/pkg/sharding"
)

var _ lease.Handler = (*Worker)(nil)

// shardRun is one leased shard on this worker.
type shardRun struct {
	key   lease.ShardKey
	lease *lease.Lease
	// writer is replaced when the shard reopens after a Redis rollback
	// (while the shard is closed, so no event goroutine uses it then).
	writer atomic.Pointer[eventsink.Writer]

	// Touched only by the shard's event goroutine (and by Acquired before the
	// shard opens): the session the next events belong to.
	sessionID, resumeURL string

	// openCtx bounds every open of the shard: it ends with the lease, and
	// Revoke cancels it before the handoff, so an open still in flight (or
	// a retry waiting its backoff) cannot bring the shard back after it was
	// handed off: that would serve it twice, unleased.
	openCtx  context.Context
	stopOpen context.CancelFunc
	// opening is held (a token in a buffer of 1) by openShard around each
	// open, so Revoke can wait until none is in flight.
	opening chan struct{}

	// Guarded by Worker.mu.
	fatal   error
	revoked bool // Revoke took it: its end is a handoff, not a loss
	// Stopped at the identify budget floor (see budget.go): why, whether the
	// stop has completed, when to re-check, and how many such stops there
	// were (openShard gives up its retries once one happened).
	floor        error
	floorStopped bool
	floorCheckAt time.Time
	floorGen     uint64

	// The shard's lifecycle (runShard) runs on a goroutine only while it
	// has a step to take: the first open, a reopen (reopen, heal, rebuild:
	// each sender then calls kick) or the stop once its lease ended (kick,
	// from context.AfterFunc). An idle shard holds no goroutine for it.
	// stepping, guarded by stepMu: a goroutine runs the steps; it stays set
	// once the shard stopped, so nothing runs after that.
	stepMu   sync.Mutex
	stepping bool

	// reopen is signalled (buffer 1) by the budget loop: the budget has
	// reset, open the shard again. Only takeSteps receives from it.
	reopen chan struct{}
	// heal is sent (buffer 1) the writer's *RollbackError: Redis lost
	// committed events; reopen the shard from the durable seq. Only
	// takeSteps receives from it.
	heal chan *eventsink.RollbackError
	// healing is set from a rollback's reopen until the session is READY
	// again: RESUMED means Discord replayed the lost events, READY that it
	// could not (a new session; the lost events are gone).
	healing   atomic.Bool
	healStart atomic.Int64 // unix ns of the rollback's reopen
	// rebuild is sent (buffer 1) by the writer's Rebuild: Redis lost the
	// shard's session record, and its cache with it; reopen the shard with
	// a new session. Only takeSteps receives from it. rebuilding is set from
	// then until a new session's READY, so that a handoff meanwhile passes
	// no session on (the next owner IDENTIFYs: a new session rebuilds it).
	rebuild    chan struct{}
	rebuilding atomic.Bool

	// cmd is the shard's gateway command loop (commands.go); set before the
	// run is in Worker.shards.
	cmd *commandRun

	dropLogged atomic.Bool // a dispatch its writer refused was logged (add)
}

// add hands one dispatch to the shard's writer. READY starts a new session.
func (w *Worker) add(r *shardRun, t gateway.EventType, seq int, data json.RawMessage) {
	switch t {
	case gateway.EventTypeReady:
		var ready struct {
			SessionID string `json:"session_id"`
			ResumeURL string `json:"resume_gateway_url"`
		}
		if json.Unmarshal(data, &ready) == nil && ready.SessionID != "" {
			// A replay may hold the session's own READY: only another
			// session's READY ends a rollback's healing.
			if ready.SessionID != r.sessionID && r.healing.CompareAndSwap(true, false) {
				w.healed(r, false)
			}
			if ready.SessionID != r.sessionID {
				r.rebuilding.Store(false)
			}
			r.sessionID, r.resumeURL = ready.SessionID, ready.ResumeURL
		}
	case gateway.EventTypeResumed:
		if r.healing.CompareAndSwap(true, false) {
			w.healed(r, true)
		}
	}
	// Errors mean the lease ended or the sink refused: the events are left
	// for the next owner, who RESUMEs from the last committed seq.
	if err := r.writer.Load().Add(r.lease.Context(), eventsink.Event{Type: string(t), Seq: seq,
		SessionID: r.sessionID, ResumeURL: r.resumeURL, Data: data}); err != nil {
		// A writer's errors are final: log the first drop of the run, count
		// them all (a stopped shard's queue may hold thousands).
		w.m.eventsDropped.Inc()
		if r.dropLogged.CompareAndSwap(false, true) {
			w.logDropped(r.key, t, seq, err)
		}
	}
}

// errNoLease: a dispatch of a shard this worker holds no lease for.
var errNoLease = errors.New("no lease held for the shard")

// logDropped reports a dispatch no writer took. The session record still
// names the last committed seq, so the RESUME of whoever runs the shard next
// replays it; a drop while the shard's lease lives here would be a loss,
// which the log makes visible.
func (w *Worker) logDropped(key lease.ShardKey, t gateway.EventType, seq int, err error) {
	w.log.Warn("dispatch not committed: left for the next RESUME", "shard_id", key.ID, "shard_count", key.Count,
		"event", t, "seq", seq, "err", err)
}

// runFleet joins the fleet and runs the leased shards until ctx ends.
func (w *Worker) runFleet(ctx context.Context) error {
	client := w.cfg.Redis
	keys, err := lease.ResolvePartitions(ctx, client, lease.NewKeys(w.cfg.KeyPrefix), w.cfg.Lease.Partitions)
	if err != nil {
		return fmt.Errorf("fleet partitions: %w", err)
	}
	w.keys = keys
	// A new fleet on Cluster gets more partitions; one partition there is a
	// fleet from before partitions (or started with PARTITIONS=1), adopted.
	if keys.Partitions() == 1 && w.cfg.Lease.Partitions != 1 && lease.NewFleetPartitions(client) > 1 {
		w.log.Warn("the fleet stores 1 partition on Redis Cluster: one master carries all of it; "+
			"a fleet started afresh under a new KEY_PREFIX spreads over the masters", "key_prefix", keys.Prefix())
	}
	count, mc, err := w.startLimiter(ctx, keys)
	if err != nil {
		return err
	}
	defer w.closeLimiter()
	sink, err := eventsink.New(client, append([]eventsink.Option{eventsink.WithPrefix(keys.Prefix()),
		eventsink.WithPartitions(keys.Partitions()),
		eventsink.WithLogger(w.log), w.backlogSinkOption(), w.committedSinkOption(), w.cacheSinkOption()}, w.cfg.SinkOptions...)...)
	if err != nil {
		return fmt.Errorf("event sink: %w", err)
	}
	w.sink = sink
	w.seedPresence(ctx)
	session, err := w.join(ctx, keys)
	if err != nil {
		return err
	}
	layout, err := session.SetLayoutIfAbsent(ctx, count)
	if err != nil {
		_ = session.Close(context.Background())
		return fmt.Errorf("fleet layout: %w", err)
	}
	mgr, err := sharding.NewFleet(w.cfg.Token, w.onEvent,
		w.managerOptions(w.meter(w.limiter, mc), layout.Count)...)
	if err != nil {
		_ = session.Close(context.Background())
		return fmt.Errorf("shard manager: %w", err)
	}
	w.mgr = mgr
	w.mgrSet.Store(true)
	w.log.Info("joined the fleet", "shard_count", layout.Count, "max_concurrency", mc,
		"lease_ttl", session.Config().TTL)
	return w.serveSessions(ctx, session, keys)
}

// startLimiter discovers the shard count and max_concurrency and starts the
// fleet-wide identify limiter (seeding the daily budget when discovered).
func (w *Worker) startLimiter(ctx context.Context, keys lease.Keys) (count, mc int, err error) {
	count, mc, budget, err := w.discover(ctx, keys)
	if err != nil {
		return 0, 0, err
	}
	// TrustNewEpoch: this worker IDENTIFYs only under a lease, and after a
	// Redis data loss the leases' probe and grace keep new claims back until
	// the old holders are back; so a new fleet needs no quiet period.
	w.limiter = redislimiter.New(w.cfg.Redis, append([]redislimiter.ConfigOpt{redislimiter.WithKeyPrefix(keys.Prefix()),
		redislimiter.WithTrustNewEpoch(true), redislimiter.WithMaxConcurrency(mc), redislimiter.WithWindow(w.cfg.IdentifyWindow),
		redislimiter.WithMargin(w.cfg.IdentifyMargin), redislimiter.WithBudgetReserve(w.cfg.BudgetReserve),
		redislimiter.WithHolderID(w.cfg.WorkerID), redislimiter.WithLogger(w.log)}, w.cfg.LimiterOptions...)...)
	if err := w.limiter.Err(); err != nil {
		return 0, 0, fmt.Errorf("identify limiter: %w", err)
	}
	// Known from the start, the epoch lets this limiter see a data loss even
	// if it has not IDENTIFYed yet (its shards RESUMEd): otherwise, with
	// TrustNewEpoch, its first IDENTIFY after a FLUSHALL could be granted at
	// once beside one another worker's limiter sent just before.
	if err := w.limiter.LearnEpoch(ctx); err != nil {
		return 0, 0, fmt.Errorf("identify limiter: %w", err)
	}
	if budget != nil {
		if err := w.storeBudget(ctx, *budget); err != nil {
			w.log.Warn("store identify budget", "err", err)
		}
	}
	return count, mc, nil
}

// serveSessions runs session's reconcile loop, and the next sessions' after a
// self-fence, until ctx ends; then it hands every shard off.
func (w *Worker) serveSessions(ctx context.Context, session *lease.Session, keys lease.Keys) error {
	statusCtx, stopStatus := context.WithCancel(context.Background())
	w.wg.Go(func() { w.statusLoop(statusCtx) })
	w.wg.Go(func() { w.budgetLoop(statusCtx) })
	w.wg.Go(func() { w.commandWakes(statusCtx) })
	defer func() {
		stopStatus()
		w.wg.Wait()
		w.deleteStatus()
	}()
	for {
		runErr := session.Run(ctx, w)
		if ctx.Err() != nil {
			w.shutdownFleet(session)
			return nil // a requested stop, not a failure
		}
		// The session ended under us: self-fenced (Redis unreachable past the
		// renew deadline) or expired. Its leases' Done have closed, so the
		// shard goroutines stop every shard; once they have, join again as a
		// new member. A session closed or orphaned by its owner is final.
		w.shardWG.Wait()
		if !errors.Is(runErr, lease.ErrSelfFenced) && !errors.Is(runErr, lease.ErrExpired) {
			w.shutdownFleet(session)
			return runErr
		}
		w.log.Warn("fleet session ended; joining again", "err", runErr)
		var err error
		if session, err = w.rejoin(ctx, keys); err != nil {
			w.mgr.Close(context.Background())
			return nil // ctx ended while rejoining
		}
	}
}

// join starts a fleet session for this worker.
func (w *Worker) join(ctx context.Context, keys lease.Keys) (*lease.Session, error) {
	lc := w.cfg.Lease
	lc.Prefix, lc.WorkerID, lc.Logger, lc.Info = keys.Prefix(), w.cfg.WorkerID, w.cfg.Logger, w.cfg.Info
	lc.Partitions = keys.Partitions()
	session, err := lease.NewSession(ctx, w.cfg.Redis, lc)
	if err != nil {
		return nil, fmt.Errorf("join fleet: %w", err)
	}
	w.session.Store(session)
	return session, nil
}

// rejoin retries join with capped backoff until it succeeds or ctx ends.
func (w *Worker) rejoin(ctx context.Context, keys lease.Keys) (*lease.Session, error) {
	backoff := w.cfg.Lease.RenewInterval
	for {
		session, err := w.join(ctx, keys)
		if err == nil {
			return session, nil
		}
		w.m.redisErrors.Add(1)
		w.log.Warn("rejoin the fleet", "err", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, 10*w.cfg.Lease.RenewInterval)
	}
}

// shutdownFleet hands every shard off, then leaves the fleet, within
// ShutdownTimeout.
func (w *Worker) shutdownFleet(session *lease.Session) {
	ctx, cancel := w.shutdownContext()
	defer cancel()
	start := time.Now()
	select {
	case <-session.Done():
	default:
		if err := session.Drain(ctx, w); err != nil {
			w.log.Warn("drain: some shards were not handed off", "err", err)
		}
	}
	if err := session.Close(ctx); err != nil {
		w.log.Warn("leave fleet", "err", err)
	}
	// Every lease has ended; the shard goroutines stop what is left.
	w.shardWG.Wait()
	w.mgr.Close(ctx)
	w.log.Info("left the fleet", "took", time.Since(start))
}

func (w *Worker) closeLimiter() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	w.limiter.Close(ctx)
}

// discover settles the shard count and max_concurrency: configured values,
// then what the fleet stored, then GET /gateway/bot (which also seeds the
// fleet's identify budget).
func (w *Worker) discover(ctx context.Context, keys lease.Keys) (count, mc int, budget *sharding.SessionStartLimit, err error) {
	count, mc = w.cfg.ShardCount, w.cfg.MaxConcurrency
	client := w.cfg.Redis
	if layout, err := lease.LoadLayout(ctx, client, keys); err == nil {
		count = layout.Count
	} else if !errors.Is(err, lease.ErrNoLayout) {
		return 0, 0, nil, fmt.Errorf("read fleet layout: %w", err)
	}
	if mc == 0 {
		if stored, err := redislimiter.LoadMaxConcurrency(ctx, client, keys.Prefix()); err == nil {
			mc = stored
		}
	}
	if count > 0 && mc > 0 {
		return count, mc, nil, nil
	}
	gb, err := sharding.FetchGatewayBot(ctx, w.cfg.HTTPClient, w.cfg.APIURL, w.cfg.Token)
	if err != nil {
		return 0, 0, nil, w.discoveryError(err)
	}
	if count == 0 {
		count = gb.Shards
	}
	if mc == 0 {
		mc = gb.SessionStartLimit.MaxConcurrency
		if err := redislimiter.StoreMaxConcurrency(ctx, client, keys.Prefix(), mc); err != nil {
			w.log.Warn("store max_concurrency", "err", err)
		}
	}
	return count, mc, &gb.SessionStartLimit, nil // startLimiter stores it and sets the gauge
}

// Acquired implements lease.Handler: start the shard in the background.
func (w *Worker) Acquired(_ context.Context, l *lease.Lease, state gateway.ShardState) {
	key := l.Key()
	w.m.leasesWon.Inc()
	run := &shardRun{key: key, lease: l, sessionID: state.SessionID, resumeURL: state.ResumeURL,
		reopen: make(chan struct{}, 1), opening: make(chan struct{}, 1), heal: make(chan *eventsink.RollbackError, 1),
		rebuild: make(chan struct{}, 1), stepping: true} // runShard's goroutine, below
	run.openCtx, run.stopOpen = context.WithCancel(l.Context())
	w.openWriter(run, eventsink.SessionRecord{SessionID: state.SessionID, Sequence: state.Sequence})
	w.startCommands(run)
	w.mu.Lock()
	w.shards[key] = run
	if w.fatalErr != nil {
		run.fatal = w.fatalErr
	}
	w.mu.Unlock()
	w.log.Info("lease won", "shard_id", key.ID, "shard_count", key.Count, "resume", state.Resumable())
	w.shardWG.Add(1) // stopShard's Done
	go w.runShard(run, state)
	context.AfterFunc(l.Context(), func() { w.kick(run) })
}

// openWriter starts the shard's event writer, expecting Redis to hold the
// session record from (see eventsink.RollbackError).
func (w *Worker) openWriter(run *shardRun, from eventsink.SessionRecord) {
	l := run.lease
	run.writer.Store(w.sink.Open(run.key, eventsink.Fence{WorkerID: l.Owner(), Token: l.Token()}, from, eventsink.Rejections{
		// While the lease lives here, a fenced write means Redis lost the
		// lease key and the session has not re-asserted it yet: keep the
		// events and retry. A lease really lost closes Done (re-assert or
		// self-fence), which stops the shard and the writer.
		Retry:   func(error) bool { return l.Context().Err() == nil },
		Stopped: func(err error) { w.rejected(run, err) },
		Rebuild: func() {
			run.rebuilding.Store(true)
			stepDue(w, run, run.rebuild, struct{}{}) // takeSteps reopens the shard
		},
	}))
}

// runShard opens the shard, then takes its steps until none is due: it
// reopens the shard each time the budget loop says the identify budget has
// reset after a stop at its floor (with no session: the stopped shard was
// about to IDENTIFY, so it had none to resume), and each time Redis lost
// committed events (from the durable seq), and each time Redis lost the
// shard's session record and cache (with a new session, to rebuild it); once
// the lease ended, it stops the shard. kick runs it again for the next step.
func (w *Worker) runShard(run *shardRun, state gateway.ShardState) {
	w.openShard(run, state)
	w.takeSteps(run)
}

// takeSteps takes the shard's due steps until none is (the goroutine ends)
// or the shard is stopped.
func (w *Worker) takeSteps(run *shardRun) {
	for {
		select {
		case <-run.lease.Done():
			w.stopShard(run)
			return
		default:
		}
		select {
		case <-run.rebuild:
			if w.reopenForRebuild(run) {
				w.openShard(run, gateway.ShardState{})
			}
		case rb := <-run.heal:
			if st, ok := w.reopenAfterRollback(run, rb); ok {
				w.openShard(run, st)
			}
		case <-run.reopen:
			w.openShard(run, gateway.ShardState{})
		default:
			if run.idle() {
				return
			}
		}
	}
}

// stepDue signals a step on ch, unless one is pending already (ch has a
// buffer of 1; each writer reports once), and has the shard take it.
func stepDue[T any](w *Worker, run *shardRun, ch chan T, v T) {
	select {
	case ch <- v:
	default:
	}
	w.kick(run)
}

// kick has the shard take its due steps: it starts a goroutine for them
// unless one runs (that one takes them before it ends: see idle) or the
// shard was stopped.
func (w *Worker) kick(run *shardRun) {
	run.stepMu.Lock()
	defer run.stepMu.Unlock()
	if run.stepping {
		return
	}
	run.stepping = true
	go w.takeSteps(run)
}

// idle ends the steps' goroutine (true) unless a step is due. It decides
// under stepMu, as kick does, so a step signalled meanwhile is taken by
// this goroutine or starts the next: never left undone.
func (r *shardRun) idle() bool {
	r.stepMu.Lock()
	defer r.stepMu.Unlock()
	if len(r.reopen) > 0 || len(r.heal) > 0 || len(r.rebuild) > 0 || r.lease.Err() != nil {
		return false
	}
	r.stepping = false
	return true
}

// stopShard stops the shard once its lease ended (handed off or lost) and
// forgets it: the shard's last step (stepping stays set).
func (w *Worker) stopShard(run *shardRun) {
	defer w.shardWG.Done()
	run.stopOpen()
	w.stopCommands(context.Background(), run) // ended with the lease: wait for it
	w.stopLost(run)
	w.mu.Lock()
	if w.shards[run.key] == run {
		delete(w.shards, run.key)
	}
	w.mu.Unlock()
}

// openShard opens the shard while its lease lives. An open that fails for a
// reason that may pass (a stale gateway of the same ID still closing, a
// connection that failed with auto-reconnect off...) is retried with capped
// backoff, so a leased shard never stays "opening" for good; a fatal close or
// the budget floor stops it loudly instead (and from the floor, only the
// budget loop reopens it: this call returns).
func (w *Worker) openShard(run *shardRun, state gateway.ShardState) {
	ctx := run.openCtx
	w.mu.RLock()
	floorGen := run.floorGen
	w.mu.RUnlock()
	backoff := openRetryMin
	for attempt := 0; ; attempt++ {
		stopped, err := w.openAttempt(run, floorGen, attempt, &state)
		switch {
		case stopped:
			return
		case err == nil, ctx.Err() != nil, errors.Is(err, sharding.ErrShardRemoved), errors.Is(err, gateway.ErrClosed):
			// Removed or closed by this worker while opening: handed off,
			// stopped by a fatal close or the budget floor, refused by the
			// sink (a fenced write: the lease is going). Not ours to reopen
			// (from the budget floor, the budget loop reopens it).
			return
		case gateway.IsFatal(err):
			w.fatalClose(run.key, err)
			return
		case errors.Is(err, redislimiter.ErrBudgetExhausted):
			w.budgetFloor(run.key.ID, err)
			return
		}
		w.log.Warn("open shard; retrying", "shard_id", run.key.ID, "shard_count", run.key.Count, "err", err,
			"backoff", backoff, "attempt", attempt+1)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, openRetryMax)
	}
}

// openAttempt makes one attempt to open the shard, unless it was stopped
// (revoked, fatal, at the budget floor since floorGen, or its lease ended).
// It holds run.opening throughout, so a Revoke that returned saw no open in
// flight, and every later attempt sees the revocation.
func (w *Worker) openAttempt(run *shardRun, floorGen uint64, attempt int, state *gateway.ShardState) (stopped bool, err error) {
	ctx := run.openCtx
	select {
	case run.opening <- struct{}{}:
	case <-ctx.Done():
		return true, nil
	}
	defer func() { <-run.opening }()
	w.mu.RLock()
	stopped = run.fatal != nil || run.revoked || run.floorGen != floorGen
	w.mu.RUnlock()
	if stopped || ctx.Err() != nil {
		return true, nil
	}
	if attempt > 0 {
		*state = w.resumePoint(ctx, run.key, *state)
	}
	if state.Resumable() {
		w.m.resumes.Inc()
	}
	return false, w.mgr.OpenShardWithState(ctx, run.key, *state)
}

// Open retry backoff bounds.
const (
	openRetryMin = 100 * time.Millisecond
	openRetryMax = 5 * time.Second
)

// resumePoint refreshes state from the shard's committed session record, so
// a retried open resumes from the last committed seq of the same session.
func (w *Worker) resumePoint(ctx context.Context, key lease.ShardKey, state gateway.ShardState) gateway.ShardState {
	if !state.Resumable() {
		return state
	}
	rec, err := w.sink.Session(ctx, key)
	if err != nil || rec.SessionID != state.SessionID || rec.Sequence < state.Sequence {
		return state
	}
	state.Sequence = rec.Sequence
	return state
}

// stopLost stops a shard whose lease ended without a handoff: at once,
// keeping the Discord session resumable, writing nothing more.
func (w *Worker) stopLost(run *shardRun) {
	w.mu.RLock()
	handedOff := run.revoked
	w.mu.RUnlock()
	if !handedOff {
		w.m.leasesLost.Inc()
		w.log.Warn("lease lost: stopping the shard", "shard_id", run.key.ID, "shard_count", run.key.Count,
			"err", run.lease.Err())
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, _ = w.mgr.HandoffShard(ctx, run.key.ID)
		cancel()
	}
	run.writer.Load().Abandon()
}

// rejected runs when the sink refuses the shard's writes. Fenced or stale
// session: the shard is stopped and its lease given up. Rolled back: takeSteps
// reopens it from the durable seq (unless it is being handed off: the next
// owner RESUMEs from the record anyway).
func (w *Worker) rejected(run *shardRun, err error) {
	var rb *eventsink.RollbackError
	if errors.As(err, &rb) {
		stepDue(w, run, run.heal, rb) // takeSteps reopens the shard
		return
	}
	w.log.Warn("event sink refused the shard's writes: stopping it", "shard_id", run.key.ID, "err", err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _ = w.mgr.HandoffShard(ctx, run.key.ID)
	_ = run.lease.Release(ctx)
}

// reopenAfterRollback closes the shard (keeping its Discord session), swaps
// in a writer that expects the durable record, and returns the state to
// RESUME from: the rolled-back session at its durable seq, so that Discord
// replays what Redis lost. false: the shard is being handed off or stopped.
func (w *Worker) reopenAfterRollback(run *shardRun, rb *eventsink.RollbackError) (gateway.ShardState, bool) {
	if !w.takeOpening(run) {
		return gateway.ShardState{}, false
	}
	defer func() { <-run.opening }()
	ctx := run.openCtx
	w.m.rollbacks.Inc()
	w.log.Error("Redis lost events it had committed (failover to a lagging replica?): resuming from the durable seq so Discord replays them",
		"shard_id", run.key.ID, "shard_count", run.key.Count, "durable_seq", rb.Durable, "committed_seq", rb.Expected)
	hctx, cancel := context.WithTimeout(ctx, w.cfg.ShutdownTimeout)
	_, err := w.mgr.HandoffShard(hctx, run.key.ID)
	cancel()
	if err != nil && !errors.Is(err, sharding.ErrShardNotFound) {
		// openShard retries until the old gateway is gone.
		w.log.Warn("close the shard to resume it", "shard_id", run.key.ID, "err", err)
	}
	// The old gateway's events are all delivered (to the rejected writer,
	// which dropped them): none reaches the new writer.
	run.writer.Load().Abandon()
	st := gateway.ShardState{SessionID: rb.Session, Sequence: rb.Durable, ResumeURL: rb.ResumeURL}
	w.openWriter(run, eventsink.SessionRecord{SessionID: st.SessionID, Sequence: st.Sequence})
	run.sessionID, run.resumeURL = st.SessionID, st.ResumeURL
	run.healStart.Store(time.Now().UnixNano())
	run.healing.Store(true)
	return st, true
}

// takeOpening takes run.opening for a reopen (Revoke waits for it: no
// handoff meanwhile), unless the shard is being handed off or stopped
// (false: nothing taken).
func (w *Worker) takeOpening(run *shardRun) bool {
	ctx := run.openCtx
	select {
	case run.opening <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	w.mu.RLock()
	stopped := run.fatal != nil || run.revoked
	w.mu.RUnlock()
	if stopped || ctx.Err() != nil {
		<-run.opening
		return false
	}
	return true
}

// reopenForRebuild closes the shard after Redis lost its session record and
// cache, once its writer committed everything the old session delivered (the
// writer restarted the record, so it is valid), and swaps in a writer for a
// new session: the caller opens the shard with no session to resume, and
// the new session's READY and GUILD_CREATEs rebuild the cache. false: the
// shard is being handed off or stopped (see Revoke for the first), or a new
// session began meanwhile (op 9, a failed RESUME): it rebuilds the cache.
func (w *Worker) reopenForRebuild(run *shardRun) bool {
	if !w.takeOpening(run) {
		return false
	}
	defer func() { <-run.opening }()
	if !run.rebuilding.Load() {
		return false
	}
	w.m.cacheRebuilds.Inc()
	w.log.Info("reopening the shard with a new session to rebuild the cache Redis lost",
		"shard_id", run.key.ID, "shard_count", run.key.Count)
	ctx, cancel := context.WithTimeout(run.openCtx, w.cfg.ShutdownTimeout)
	defer cancel()
	if _, err := w.mgr.HandoffShard(ctx, run.key.ID); err != nil && !errors.Is(err, sharding.ErrShardNotFound) {
		// openShard retries until the old gateway is gone.
		w.log.Warn("close the shard to rebuild its cache", "shard_id", run.key.ID, "err", err)
	}
	if err := run.writer.Load().Close(ctx); err != nil && !errors.Is(err, eventsink.ErrClosed) {
		w.log.Warn("flush the old session's events before the rebuild", "shard_id", run.key.ID, "err", err)
	}
	w.openWriter(run, eventsink.SessionRecord{})
	run.sessionID, run.resumeURL = "", ""
	return true
}

// healed reports how a shard reopened after a rollback came back: RESUMED
// (Discord replayed the lost events) or a new session (it could not: they are
// gone).
func (w *Worker) healed(run *shardRun, resumed bool) {
	took := time.Since(time.Unix(0, run.healStart.Load()))
	if resumed {
		w.log.Info("shard resumed after the Redis rollback: Discord replayed the lost events",
			"shard_id", run.key.ID, "shard_count", run.key.Count, "took", took)
		return
	}
	w.m.rollbackLost.Inc()
	w.log.Error("Discord could not replay the events Redis lost: a new session started without them",
		"shard_id", run.key.ID, "shard_count", run.key.Count, "took", took)
}

// Revoke implements lease.Handler: hand the shard off and return its record
// (session, resume URL, last committed seq) for Run to save.
func (w *Worker) Revoke(ctx context.Context, l *lease.Lease) (gateway.ShardState, error) {
	key := l.Key()
	w.mu.Lock()
	run := w.shards[key]
	if run != nil {
		run.revoked = true
	}
	w.mu.Unlock()
	if run == nil {
		return gateway.ShardState{}, nil
	}
	// Stop every retry and any open in flight (it closes what it opened),
	// take the shard, and wait until no open is in flight: nothing reopens
	// the shard after the handoff.
	run.stopOpen()
	start := time.Now()
	w.stopCommands(ctx, run)
	_, err := w.mgr.HandoffShard(ctx, key.ID)
	if err != nil && !errors.Is(err, sharding.ErrShardNotFound) {
		return gateway.ShardState{}, fmt.Errorf("hand off shard %d: %w", key.ID, err)
	}
	select {
	case run.opening <- struct{}{}:
		<-run.opening
	case <-ctx.Done():
		return gateway.ShardState{}, fmt.Errorf("hand off shard %d: an open still in flight: %w", key.ID, ctx.Err())
	}
	// Everything the gateway delivered is in the writer now; commit it so the
	// record's seq (the resume point) covers it.
	if err := run.writer.Load().Close(ctx); err != nil && !errors.Is(err, eventsink.ErrClosed) {
		w.log.Warn("flush events before handoff", "shard_id", key.ID, "err", err)
	}
	if run.rebuilding.Load() {
		// Its cache awaits a new session: the next owner IDENTIFYs.
		w.m.handoffs.Inc()
		w.log.Info("shard handed off without its session, to rebuild its cache", "shard_id", key.ID,
			"shard_count", key.Count, "took", time.Since(start))
		return gateway.ShardState{}, nil
	}
	rec, err := w.sink.Session(ctx, key)
	if err != nil {
		return gateway.ShardState{}, fmt.Errorf("read session record of shard %d: %w", key.ID, err)
	}
	w.m.handoffs.Inc()
	w.log.Info("shard handed off", "shard_id", key.ID, "shard_count", key.Count, "seq", rec.Sequence,
		"took", time.Since(start))
	return gateway.ShardState{SessionID: rec.SessionID, Sequence: rec.Sequence, ResumeURL: rec.ResumeURL}, nil
}
