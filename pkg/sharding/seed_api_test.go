package sharding

// This file mirrors the seed document (shared/seed/sharding-api.txt): every
// name with the seed's exact type. It fails to compile if one drifts.

import (
	"context"
	"log/slog"

	"github.com/disgoorg/snowflake/v2"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

const (
	_ int = MaxConcurrency
	_ int = ShardSplitCount
)

var (
	_ func(snowflake.ID, int) int = ShardIDByGuild
	_ func(int, int) int          = ShardMaxConcurrencyKey

	_ func() *Config                            = DefaultConfig
	_ func(bool) ConfigOpt                      = WithAutoScaling
	_ func(...gateway.ConfigOpt) ConfigOpt      = WithGatewayConfigOpts
	_ func(gateway.CreateFunc) ConfigOpt        = WithGatewayCreateFunc
	_ func(*slog.Logger) ConfigOpt              = WithLogger
	_ func(RateLimiter) ConfigOpt               = WithRateLimiter
	_ func(...RateLimiterConfigOpt) ConfigOpt   = WithRateLimiterConfigOpt
	_ func(int) ConfigOpt                       = WithShardCount
	_ func(...int) ConfigOpt                    = WithShardIDs
	_ func(int) ConfigOpt                       = WithShardSplitCount
	_ func([]ConfigOpt)                         = (&Config{}).Apply
	_ func(*Config)                             = ConfigOpt(nil)
	_ func(*RateLimiterConfig)                  = RateLimiterConfigOpt(nil)
	_ func() RateLimiter                        = NewNoopRateLimiter
	_ func(...RateLimiterConfigOpt) RateLimiter = NewRateLimiter
	_ func() *RateLimiterConfig                 = DefaultRateLimiterConfig
	_ func([]RateLimiterConfigOpt)              = (&RateLimiterConfig{}).Apply
	_ func(int) RateLimiterConfigOpt            = WithMaxConcurrency
	_ func(*slog.Logger) RateLimiterConfigOpt   = WithRateLimiterLogger

	_ func(string, gateway.EventHandlerFunc, ...ConfigOpt) ShardManager = New
)

// The seed's Config: every field, with its type.
var _ = Config{
	Logger:                (*slog.Logger)(nil),
	ShardIDs:              map[int]struct{}(nil),
	ShardCount:            int(0),
	ShardSplitCount:       int(0),
	AutoScaling:           bool(false),
	GatewayCreateFunc:     gateway.CreateFunc(nil),
	GatewayConfigOpts:     []gateway.ConfigOpt(nil),
	RateLimiter:           RateLimiter(nil),
	RateLimiterConfigOpts: []RateLimiterConfigOpt(nil),
}

var _ = RateLimiterConfig{
	MaxConcurrency: int(0),
	Logger:         (*slog.Logger)(nil),
}

// seedRateLimiter is the seed's RateLimiter interface, method for method.
type seedRateLimiter interface {
	Close(ctx context.Context)
	WaitBucket(ctx context.Context, shardID int) error
	UnlockBucket(shardID int)
}

// seedShardManager is the seed's ShardManager interface, method for method.
type seedShardManager interface {
	Open(ctx context.Context)
	Close(ctx context.Context)
	OpenShard(ctx context.Context, shardID int) error
	CloseShard(ctx context.Context, shardID int)
	ShardByGuildID(guildId snowflake.ID) gateway.Gateway
	Shard(shardID int) gateway.Gateway
	Shards() map[int]gateway.Gateway
}

var (
	_ seedRateLimiter  = RateLimiter(nil)
	_ RateLimiter      = seedRateLimiter(nil)
	_ seedShardManager = ShardManager(nil)
	_ ShardManager     = seedShardManager(nil)
	_ ShardManager     = FleetShardManager(nil)

	// Both limiters fit the gateway's option.
	_ gateway.IdentifyLimiter = NewRateLimiter()
	_ gateway.IdentifyLimiter = NewNoopRateLimiter()
)
