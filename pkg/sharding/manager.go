package sharding

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/disgoorg/snowflake/v2"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// manager implements FleetShardManager.
//
// The shard map is an immutable snapshot behind an atomic pointer: readers
// (Shard, Shards, ShardByGuildID) take no lock; writers copy it under mu. No
// method holds mu while it waits for a gateway, the limiter or the network.
type manager struct {
	token     string
	handler   gateway.EventHandlerFunc
	cfg       Config // a private copy; never written after newManager
	logger    *slog.Logger
	configErr error

	// prepared: discovery and limiter set-up, done once by the first opener.
	// prepSem is a ctx-aware lock around it.
	prepSem   chan struct{}
	prepared  bool  // guarded by prepSem
	baseIDs   []int // the configured shard IDs, sorted
	baseCount int   // the configured or discovered count
	mc        int
	url       string // gateway URL from GET /gateway/bot, or ""

	shardCount atomic.Int64
	shards     atomic.Pointer[map[int]*shard]

	mu          sync.Mutex // guards writers of shards, the fields below and shard.open/fatal
	closed      bool
	limiter     RateLimiter
	ownLimiter  bool
	lastOpenErr error

	lifetime context.Context // cancelled by Close; bounds background splits
	cancel   context.CancelFunc
	bg       sync.WaitGroup // background splits started by onClose
}

var _ FleetShardManager = (*manager)(nil)

// shard is one entry of the map. key and gw never change; open and fatal are
// guarded by manager.mu.
type shard struct {
	key   ShardKey
	gw    gateway.Gateway
	open  bool  // Open returned and the shard was settled
	fatal error // a stop reported by the close handler while still opening
}

func newManager(token string, handler gateway.EventHandlerFunc, opts []ConfigOpt) *manager {
	cfg := DefaultConfig()
	cfg.Apply(opts)
	cfg.ShardIDs = maps.Clone(cfg.ShardIDs)
	cfg.GatewayConfigOpts = slices.Clone(cfg.GatewayConfigOpts)
	cfg.RateLimiterConfigOpts = slices.Clone(cfg.RateLimiterConfigOpts)
	if handler == nil {
		handler = func(gateway.Gateway, gateway.EventType, int, json.RawMessage) {}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	m := &manager{
		token:   token,
		handler: handler,
		cfg:     *cfg,
		logger:  logger.With(slog.String("component", "shard_manager")),
		prepSem: make(chan struct{}, 1),
	}
	m.lifetime, m.cancel = context.WithCancel(context.Background())
	empty := map[int]*shard{}
	m.shards.Store(&empty)
	m.shardCount.Store(int64(cfg.ShardCount))
	if token == "" {
		m.configErr = &ConfigError{Package: "sharding", Field: "token", Reason: "must not be empty"}
	} else {
		m.configErr = cfg.Validate()
	}
	return m
}

// snapshot is the current shard map; callers must not modify it.
func (m *manager) snapshot() map[int]*shard { return *m.shards.Load() }

// storeLocked publishes next as the shard map. Caller holds mu.
func (m *manager) storeLocked(next map[int]*shard) { m.shards.Store(&next) }

// removeLocked drops sh if it is still the entry of its ID, reporting whether it was.
func (m *manager) removeLocked(sh *shard) bool {
	cur := m.snapshot()
	if cur[sh.key.ID] != sh {
		return false
	}
	next := maps.Clone(cur)
	delete(next, sh.key.ID)
	m.storeLocked(next)
	return true
}

// takeLocked removes and returns the shard with the given ID, or nil.
func (m *manager) takeLocked(shardID int) *shard {
	sh := m.snapshot()[shardID]
	if sh != nil {
		m.removeLocked(sh)
	}
	return sh
}

func (m *manager) Shard(shardID int) gateway.Gateway {
	if sh := m.snapshot()[shardID]; sh != nil {
		return sh.gw
	}
	return nil
}

func (m *manager) Shards() map[int]gateway.Gateway {
	snap := m.snapshot()
	out := make(map[int]gateway.Gateway, len(snap))
	for id, sh := range snap {
		out[id] = sh.gw
	}
	return out
}

// ShardByGuildID looks first at the shard of the manager's count, then at
// every shard for one whose own (id, count) owns the guild, preferring the
// largest count if several do.
func (m *manager) ShardByGuildID(guildID snowflake.ID) gateway.Gateway {
	snap := m.snapshot()
	count := m.ShardCount()
	if sh := snap[ShardIDByGuild(guildID, count)]; sh != nil && sh.key.Count == count {
		return sh.gw
	}
	var best *shard
	for _, sh := range snap {
		if sh.key.Owns(guildID) && (best == nil || sh.key.Count > best.key.Count) {
			best = sh
		}
	}
	if best == nil {
		return nil
	}
	return best.gw
}

func (m *manager) ShardCount() int { return int(m.shardCount.Load()) }

func (m *manager) ShardKeys() []ShardKey {
	snap := m.snapshot()
	keys := make([]ShardKey, 0, len(snap))
	for _, sh := range snap {
		keys = append(keys, sh.key)
	}
	slices.SortFunc(keys, func(a, b ShardKey) int { return a.ID - b.ID })
	return keys
}

// raiseShardCount makes the manager's count at least count.
func (m *manager) raiseShardCount(count int) {
	for {
		cur := m.shardCount.Load()
		if int64(count) <= cur || m.shardCount.CompareAndSwap(cur, int64(count)) {
			return
		}
	}
}

func (m *manager) LastOpenError() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastOpenErr
}
