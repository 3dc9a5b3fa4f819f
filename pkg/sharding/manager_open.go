package sharding

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// ErrInvalidShard: a shard ID outside [0, count) or a count < 1.
var ErrInvalidShard = errors.New("sharding: invalid shard id or count")

// stopTimeout bounds the cleanup of a gateway whose Open failed.
const stopTimeout = 5 * time.Second

// openRequest is one shard to open, with the session to resume (zero: IDENTIFY).
type openRequest struct {
	key   ShardKey
	state gateway.ShardState
}

func (m *manager) Open(ctx context.Context) {
	if err := m.OpenAll(ctx); err != nil {
		m.logger.Error("open shards", slog.Any("error", err))
	}
}

func (m *manager) OpenAll(ctx context.Context) error {
	err := m.openAll(ctx)
	m.mu.Lock()
	m.lastOpenErr = err
	m.mu.Unlock()
	return err
}

func (m *manager) openAll(ctx context.Context) error {
	if err := m.prepare(ctx); err != nil {
		return err
	}
	// The configured layout, at the configured (or discovered) count: a shard
	// split since then is live under its ID and skipped.
	snap := m.snapshot()
	reqs := make([]openRequest, 0, len(m.baseIDs))
	for _, id := range m.baseIDs {
		if snap[id] == nil {
			reqs = append(reqs, openRequest{key: ShardKey{ID: id, Count: m.baseCount}})
		}
	}
	return m.openBatch(ctx, reqs)
}

func (m *manager) OpenShard(ctx context.Context, shardID int) error {
	return m.OpenShardWithState(ctx, ShardKey{ID: shardID}, gateway.ShardState{})
}

func (m *manager) OpenShardWithState(ctx context.Context, key ShardKey, state gateway.ShardState) error {
	if err := m.prepare(ctx); err != nil {
		return err
	}
	if key.Count == 0 {
		key.Count = m.ShardCount()
	}
	return m.openOne(ctx, openRequest{key: key, state: state}, nil)
}

// prepare runs once, at the first open: it asks GET /gateway/bot when the
// count is 0 and builds the default limiter. A failed prepare is retried by the
// next caller.
func (m *manager) prepare(ctx context.Context) error {
	if m.configErr != nil {
		return m.configErr
	}
	select {
	case m.prepSem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("prepare shard manager: %w", ctx.Err())
	}
	defer func() { <-m.prepSem }()
	if m.prepared {
		return nil
	}
	count, discoveredMC := m.cfg.ShardCount, 0
	if count == 0 {
		gb, err := FetchGatewayBot(ctx, m.cfg.HTTPClient, m.cfg.APIURL, m.token)
		if err != nil {
			return fmt.Errorf("discover shard count: %w", err)
		}
		count, discoveredMC, m.url = gb.Shards, gb.SessionStartLimit.MaxConcurrency, gb.URL
		m.logger.Info("shard count from gateway/bot", slog.Int("shard_count", count),
			slog.Int("max_concurrency", discoveredMC), slog.Int("session_start_remaining", gb.SessionStartLimit.Remaining))
	}
	ids, err := m.configuredIDs(count)
	if err != nil {
		return err
	}
	rlOpts := m.cfg.RateLimiterConfigOpts
	if discoveredMC > 0 {
		rlOpts = append([]RateLimiterConfigOpt{WithMaxConcurrency(discoveredMC)}, rlOpts...)
	}
	rlc := DefaultRateLimiterConfig()
	rlc.Apply(rlOpts)
	sanitizeRateLimiterConfig(rlc)

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrManagerClosed
	}
	m.limiter = m.cfg.RateLimiter
	if m.limiter == nil {
		m.limiter, m.ownLimiter = newLocalLimiter(*rlc), true
	}
	m.mc, m.baseIDs, m.baseCount = rlc.MaxConcurrency, ids, count
	if mcl, ok := m.limiter.(MaxConcurrencyReporter); ok && mcl.MaxConcurrency() > 0 {
		m.mc = mcl.MaxConcurrency()
	}
	m.raiseShardCount(count)
	m.prepared = true
	return nil
}

// configuredIDs is the sorted ShardIDs, or every ID of count.
func (m *manager) configuredIDs(count int) ([]int, error) {
	if m.cfg.ShardIDs == nil {
		ids := make([]int, count)
		for i := range ids {
			ids[i] = i
		}
		return ids, nil
	}
	ids := make([]int, 0, len(m.cfg.ShardIDs))
	for id := range m.cfg.ShardIDs {
		if id >= count {
			return nil, &ConfigError{Package: "sharding", Field: "ShardIDs", Reason: fmt.Sprintf("shard %d is out of range [0, %d)", id, count)}
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// openBatch opens reqs concurrently and waits for all of them. Within a bucket,
// a shard dials only once the previous one got its permit (identifyOrder), so
// identifies go in ID order, round after round, and only about one connection
// per bucket waits for the window instead of the whole batch dialling at once.
//
// Two openers per bucket take the shards in ID order: one shard of a bucket
// identifying and reading READY, the next dialling behind it, is all the
// limiter's pacing can use. A goroutine per shard would only park on its
// turn, and the runtime keeps every goroutine descriptor it ever needed at
// once, with the stack spans those goroutines fragmented, for the life of
// the process: about 1 KiB per shard opened (cmd/gatewaybench idle).
func (m *manager) openBatch(ctx context.Context, reqs []openRequest) error {
	slices.SortFunc(reqs, func(a, b openRequest) int { return a.key.ID - b.key.ID })
	order := newIdentifyOrder(reqs, m.mc)
	errs := make([]error, len(reqs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(len(reqs), 2*max(m.mc, 1)) {
		wg.Go(func() {
			// Shards are taken in ID order, so the shard a turn waits
			// for was taken before it and never waits behind it.
			for i := int(next.Add(1) - 1); i < len(reqs); i = int(next.Add(1) - 1) {
				errs[i] = m.openOne(ctx, reqs[i], order.turn(reqs[i].key.ID))
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// openOne opens one shard and waits for READY. On 4011 with AutoScaling, it
// opens the shard's split instead (holding no lock) and returns its result.
func (m *manager) openOne(ctx context.Context, req openRequest, turn *orderTurn) error {
	defer turn.done()
	sh, err := m.reserve(req, turn)
	if err != nil {
		return &ShardError{ShardID: req.key.ID, ShardCount: req.key.Count, Err: err}
	}
	log := m.logger.With(slog.Int("shard_id", sh.key.ID), slog.Int("shard_count", sh.key.Count))
	openErr := turn.wait(ctx)
	if openErr == nil {
		openErr = sh.gw.Open(ctx)
	}
	turn.done()
	owned, err := m.settle(sh, openErr)
	if err == nil {
		log.Debug("shard ready", slog.Bool("resumed", req.state.Resumable()))
		return nil
	}
	if owned && !gateway.IsFatal(err) {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
		sh.gw.CloseWithCode(stopCtx, gateway.CloseCodeHandoff, "open failed")
		cancel()
	}
	if owned && m.cfg.AutoScaling && gateway.CloseStatus(err) == gateway.CloseShardingRequired {
		return m.split(ctx, sh.key)
	}
	return &ShardError{ShardID: sh.key.ID, ShardCount: sh.key.Count, Err: err}
}

// reserve creates the shard's gateway and enters it in the map, so a second
// open of the same ID fails with ErrShardAlreadyOpen.
func (m *manager) reserve(req openRequest, turn *orderTurn) (*shard, error) {
	if !req.key.Valid() {
		return nil, fmt.Errorf("shard %d of count %d: %w", req.key.ID, req.key.Count, ErrInvalidShard)
	}
	m.mu.Lock()
	closed, limiter := m.closed, m.limiter
	m.mu.Unlock()
	if closed {
		return nil, ErrManagerClosed
	}
	if m.snapshot()[req.key.ID] != nil {
		return nil, ErrShardAlreadyOpen
	}
	sh := &shard{key: req.key}
	onClose := func(gw gateway.Gateway, err error, reconnect bool) { m.onClose(sh, gw, err, reconnect) }
	sh.gw = m.cfg.GatewayCreateFunc(m.token, m.handler, m.gatewayOpts(req, turn.limiter(limiter), onClose)...)
	if sh.gw == nil {
		return nil, &ConfigError{Package: "sharding", Field: "GatewayCreateFunc", Reason: "returned a nil gateway"}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrManagerClosed
	}
	cur := m.snapshot()
	if cur[req.key.ID] != nil {
		return nil, ErrShardAlreadyOpen
	}
	next := maps.Clone(cur)
	next[sh.key.ID] = sh
	m.storeLocked(next)
	return sh, nil
}

// gatewayOpts: the manager's logger, URLs, limiter and close handler; then a
// copy of the user's options; then the shard's ID and count (not overridable);
// then the session to resume.
func (m *manager) gatewayOpts(req openRequest, limiter gateway.IdentifyLimiter, onClose gateway.CloseHandlerFunc) []gateway.ConfigOpt {
	opts := make([]gateway.ConfigOpt, 0, len(m.cfg.GatewayConfigOpts)+8)
	opts = append(opts,
		gateway.WithLogger(m.cfg.Logger),
		gateway.WithAPIURL(m.cfg.APIURL),
		gateway.WithHTTPClient(m.cfg.HTTPClient),
	)
	if m.url != "" {
		opts = append(opts, gateway.WithURL(m.url))
	}
	opts = append(opts, gateway.WithIdentifyLimiter(limiter), gateway.WithCloseHandler(onClose))
	opts = append(opts, m.cfg.GatewayConfigOpts...)
	opts = append(opts, gateway.WithShardID(req.key.ID), gateway.WithShardCount(req.key.Count))
	if req.state.Resumable() {
		opts = append(opts, gateway.WithShardState(req.state))
	}
	return opts
}

// settle records the end of a shard's Open. It reports whether sh was still in
// the map (then a failed sh has now been removed and the caller handles it) and
// the shard's error (nil: READY and still here).
func (m *manager) settle(sh *shard, openErr error) (owned bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.snapshot()[sh.key.ID] != sh {
		if openErr == nil {
			openErr = ErrShardRemoved
		}
		return false, openErr
	}
	if openErr == nil && sh.fatal == nil {
		sh.open = true
		return true, nil
	}
	if openErr == nil {
		openErr = sh.fatal
	}
	m.removeLocked(sh)
	return true, openErr
}

// split opens the shards that replace key on close 4011 and waits for them.
func (m *manager) split(ctx context.Context, key ShardKey) error {
	children := key.Split(m.cfg.ShardSplitCount)
	if len(children) == 0 {
		return &ShardError{ShardID: key.ID, ShardCount: key.Count, Err: ErrInvalidShard}
	}
	m.raiseShardCount(children[0].Count)
	m.logger.Info("resharding on 4011", slog.Int("shard_id", key.ID), slog.Int("shard_count", key.Count),
		slog.Int("new_shard_count", children[0].Count))
	reqs := make([]openRequest, len(children))
	for i, c := range children {
		reqs[i] = openRequest{key: c}
	}
	if err := m.openBatch(ctx, reqs); err != nil {
		return fmt.Errorf("reshard %d/%d: %w", key.ID, key.Count, err)
	}
	return nil
}
