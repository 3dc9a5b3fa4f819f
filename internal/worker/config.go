package worker

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/cache"
	"github.com/shardfleet/shardfleet/internal/eventsink"
	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/pkg/fleet"
	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/redislimiter"
)

// Config configures a Worker. DefaultConfig holds the defaults; New validates once.
type Config struct {
	// Token is the bot token. Required. It is handed to the gateway and to
	// GET /gateway/bot only; it is never logged or stored.
	Token string
	// WorkerID names this worker (lease member ID). Default: a random UUID.
	WorkerID string
	// Logger gets the worker's logs, with worker_id attached. Default slog.Default().
	Logger *slog.Logger

	// Redis, when set, makes this a fleet member; nil runs every shard locally.
	Redis redis.UniversalClient
	// KeyPrefix of every Redis key of the fleet (with a {hash tag}). Default "{shardfleet}:".
	KeyPrefix string
	// Lease configures the fleet session (TTL, renew interval and deadline...).
	// Default lease.DefaultConfig(). Prefix, WorkerID and Logger are set by the worker.
	Lease lease.Config
	// SinkOptions configure the event sink (stream cap, batching).
	SinkOptions []eventsink.Option
	// Cache is what the fleet's shared state cache keeps (internal/cache);
	// the zero Config keeps nothing. Fleet mode only.
	Cache cache.Config

	// ShardCount is the bot's shard count; 0 asks Discord (GET /gateway/bot).
	// In fleet mode the fleet's stored layout wins over it.
	ShardCount int
	// MaxConcurrency is the number of identify buckets; 0 asks Discord.
	MaxConcurrency int
	// IdentifyWindow and IdentifyMargin pace IDENTIFYs per bucket. Defaults 5 s and 250 ms.
	IdentifyWindow, IdentifyMargin time.Duration
	// LimiterOptions are appended to the fleet identify limiter's options
	// (pkg/redislimiter: HoldTTL, PollInterval... for compressed timings).
	LimiterOptions []redislimiter.ConfigOpt
	// BudgetReserve: identifies stop when the fleet's daily budget is at this floor. Default 10.
	BudgetReserve int
	// BudgetResetMargin is added to the budget's reset time before a shard
	// stopped at the floor is re-checked, so Discord has reset it by then.
	// Default 1 s.
	BudgetResetMargin time.Duration
	// BudgetRecheck is how often shards stopped at the budget floor are
	// re-checked when the reset time is unknown, or reading Discord's budget
	// failed; it also bounds that read. Default 1 min.
	BudgetRecheck time.Duration

	// APIURL is Discord's REST base. Default gateway.DefaultAPIURL.
	APIURL string
	// GatewayURL, when set, skips asking Discord for it.
	GatewayURL string
	// HTTPClient for REST and websocket handshakes. Default http.DefaultClient.
	HTTPClient *http.Client
	// GatewayOptions are appended to every shard's gateway options (intents,
	// compression, reconnect backoff...).
	GatewayOptions []gateway.ConfigOpt

	// BacklogShardBytes bounds each shard's dispatches held in memory: those
	// queued for the handler, and again those waiting for Redis. A shard
	// over it stops reading and RESUMEs once drained (gateway.WithBacklogBytes).
	// Default gateway.DefaultBacklogBytes (4 MiB).
	BacklogShardBytes int64
	// BacklogWorkerBytes bounds the sum over all shards of both; a shard that
	// finds it spent pauses too. Default 256 MiB.
	BacklogWorkerBytes int64

	// Presence, when set, is the presence shards IDENTIFY with. In fleet
	// mode it seeds the fleet's presence in Redis when there is none, and the
	// stored one wins (pkg/fleet's SetPresence changes it fleet-wide).
	Presence *gateway.PresenceUpdate

	// EventHandler, when set, also receives dispatches in-process, one call
	// at a time per shard, in the shard's seq order. In fleet mode it gets
	// exactly the dispatches committed to the stream, once each, after their
	// commit returned, on the shard's writer goroutine (the writer commits
	// nothing more until it returns): never one the sink refused (a fenced
	// or stale owner's), nor a replay already committed. In local mode it
	// gets every dispatch as the gateway delivers it. Event.ID is empty:
	// there is nothing to ack.
	EventHandler func(fleet.Event)

	// ShutdownTimeout bounds the graceful stop after Run's ctx ends (hand
	// every shard off, save its session, release). Default 10 s.
	ShutdownTimeout time.Duration

	// StatusInterval is how often the worker publishes its status into Redis
	// and samples the identify budget. Default: the lease renew interval.
	StatusInterval time.Duration
	// Info describes this worker in its member key and status (host, HTTP address).
	Info lease.MemberInfo

	// CommandSweep is how often the worker looks at the gateway command
	// queues of all its shards at once (one pipelined XLEN each), for a
	// command whose pub/sub wake-up was lost; it also looks each time its
	// subscription (re)connects. Default 15 s.
	CommandSweep time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Logger:            slog.Default(),
		KeyPrefix:         lease.DefaultPrefix,
		Lease:             lease.DefaultConfig(),
		IdentifyWindow:    5 * time.Second,
		IdentifyMargin:    250 * time.Millisecond,
		BudgetReserve:     10,
		BudgetResetMargin: time.Second,
		BudgetRecheck:     time.Minute,
		ShutdownTimeout:   10 * time.Second,
		CommandSweep:      15 * time.Second,
		APIURL:            gateway.DefaultAPIURL,
		HTTPClient:        http.DefaultClient,

		BacklogShardBytes:  gateway.DefaultBacklogBytes,
		BacklogWorkerBytes: 256 << 20,
	}
}

// validate checks cfg once and fills derived defaults.
func (c *Config) validate() error {
	switch {
	case c.Token == "":
		return gateway.NewConfigError("worker", "Token", "is empty")
	case c.Logger == nil:
		return gateway.NewConfigError("worker", "Logger", "is nil")
	case c.HTTPClient == nil:
		return gateway.NewConfigError("worker", "HTTPClient", "is nil")
	case c.APIURL == "":
		return gateway.NewConfigError("worker", "APIURL", "is empty")
	case c.ShardCount < 0:
		return gateway.NewConfigError("worker", "ShardCount", "is negative")
	case c.MaxConcurrency < 0:
		return gateway.NewConfigError("worker", "MaxConcurrency", "is negative")
	case c.IdentifyWindow <= 0:
		return gateway.NewConfigError("worker", "IdentifyWindow", "must be positive")
	case c.IdentifyMargin < 0:
		return gateway.NewConfigError("worker", "IdentifyMargin", "is negative")
	case c.BudgetReserve < 0:
		return gateway.NewConfigError("worker", "BudgetReserve", "is negative")
	case c.BudgetResetMargin < 0:
		return gateway.NewConfigError("worker", "BudgetResetMargin", "is negative")
	case c.BudgetRecheck <= 0:
		return gateway.NewConfigError("worker", "BudgetRecheck", "must be positive")
	case c.ShutdownTimeout <= 0:
		return gateway.NewConfigError("worker", "ShutdownTimeout", "must be positive")
	case c.CommandSweep <= 0:
		return gateway.NewConfigError("worker", "CommandSweep", "must be positive")
	case c.StatusInterval < 0:
		return gateway.NewConfigError("worker", "StatusInterval", "is negative")
	case c.BacklogShardBytes <= 0:
		return gateway.NewConfigError("worker", "BacklogShardBytes", "must be positive")
	case c.BacklogWorkerBytes < c.BacklogShardBytes:
		return gateway.NewConfigError("worker", "BacklogWorkerBytes", "is below BacklogShardBytes")
	case c.Cache.Kinds.Has(cache.Messages) && c.Cache.Messages < 1:
		return gateway.NewConfigError("worker", "Cache.Messages", "must be at least 1 when the cache keeps messages")
	}
	c.KeyPrefix = lease.NormalizePrefix(c.KeyPrefix)
	if c.StatusInterval == 0 {
		c.StatusInterval = c.Lease.RenewInterval
		if c.StatusInterval == 0 {
			c.StatusInterval = lease.DefaultConfig().RenewInterval
		}
	}
	return nil
}
