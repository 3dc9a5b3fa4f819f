package sharding

import (
	"context"
	"log/slog"

	"github.com/disgoorg/snowflake/v2"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// ShardManager manages multiple gateway.Gateway connections. For more information on sharding see: https://discord.com/developers/docs/topics/gateway#sharding
//
// All methods are safe for concurrent use. A shard is keyed by its ID; each
// shard has its own count (gateway.Gateway.ShardCount), which differs from the
// manager's after a split.
type ShardManager interface {
	// Open opens all configured shards: the ShardIDs, or every shard of the
	// count. It returns once every shard is READY or has failed; failures are
	// logged and kept for FleetShardManager.LastOpenError (OpenAll returns them).
	// Shards already open are skipped. A gateway retries retryable failures
	// (with AutoReconnect) until ctx ends, so bound ctx.
	Open(ctx context.Context)
	// Close closes all shards with code 1000, in parallel, bounded by ctx, and
	// then the default RateLimiter. The manager opens no shard after Close.
	Close(ctx context.Context)
	// OpenShard opens a specific shard, with the manager's current shard count.
	// It returns once the shard is READY, with ErrShardAlreadyOpen when the ID is
	// open or opening, or with a *ShardError.
	OpenShard(ctx context.Context, shardID int) error
	// CloseShard closes a specific shard with code 1000 (its session ends). It
	// does nothing for an unknown shard.
	CloseShard(ctx context.Context, shardID int)
	// ShardByGuildID returns the gateway.Gateway for the shard that contains the
	// given guild, across shards of mixed counts, or nil.
	ShardByGuildID(guildId snowflake.ID) gateway.Gateway
	// Shard returns the gateway.Gateway for the given shard ID (open or opening), or nil.
	Shard(shardID int) gateway.Gateway
	// Shards returns a copy of all shards as a map.
	Shards() map[int]gateway.Gateway
}

// FleetShardManager is what a fleet worker needs beyond the seed's
// ShardManager: reported failures, opening a shard of any count from a saved
// session, and handing a shard off with its session still resumable. New
// returns one (assert it), NewFleet returns it with New's config error.
type FleetShardManager interface {
	ShardManager
	// OpenAll is Open that returns the failures, errors.Join of *ShardError
	// (a config or GET /gateway/bot error as is).
	OpenAll(ctx context.Context) error
	// LastOpenError is what the last Open or OpenAll returned.
	LastOpenError() error
	// OpenShardWithState opens shard key.ID of count key.Count, which may differ
	// from the manager's (0: the manager's). A resumable state makes it RESUME
	// (no IDENTIFY, no limiter); else it IDENTIFYs.
	OpenShardWithState(ctx context.Context, key ShardKey, state gateway.ShardState) error
	// HandoffShard removes the shard, closes it with gateway.CloseCodeHandoff
	// (the session stays resumable) and returns the state to RESUME it elsewhere.
	// ErrShardNotFound if the shard is not here.
	HandoffShard(ctx context.Context, shardID int) (gateway.ShardState, error)
	// ShardCount is the manager's shard count: the configured or discovered one,
	// raised by every split. 0 before the first Open when discovery is pending.
	ShardCount() int
	// ShardKeys lists the shards open or opening, by ID.
	ShardKeys() []ShardKey
}

// New creates a new default ShardManager with the given token, eventHandlerFunc
// and ConfigOpt(s). The result is also a FleetShardManager.
//
// The seed's signature has no error: an invalid config is logged (naming the
// field, never the token) and returned by every Open, OpenAll and OpenShard.
// NewFleet returns it at once.
func New(token string, eventHandlerFunc gateway.EventHandlerFunc, opts ...ConfigOpt) ShardManager {
	m := newManager(token, eventHandlerFunc, opts)
	if m.configErr != nil {
		m.logger.Error("shard manager: invalid config", slog.Any("error", m.configErr))
	}
	return m
}

// NewFleet is New returning the FleetShardManager, or the config's error (a
// *ConfigError naming the field).
func NewFleet(token string, eventHandlerFunc gateway.EventHandlerFunc, opts ...ConfigOpt) (FleetShardManager, error) {
	m := newManager(token, eventHandlerFunc, opts)
	if m.configErr != nil {
		return nil, m.configErr
	}
	return m, nil
}
