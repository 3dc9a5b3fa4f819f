package member

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/cache"
	"github.com/shardfleet/shardfleet/internal/eventsink"
	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/internal/worker"
	"github.com/shardfleet/shardfleet/pkg/fleet"
	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/redislimiter"
)

// Config configures a Member. Start from DefaultConfig: New validates it,
// and an invalid field is a *gateway.ConfigError naming it.
type Config struct {
	// Token is the bot token. Required. It goes to the gateway and to GET
	// /gateway/bot only: never to logs, errors, metrics or Redis.
	Token string
	// Redis is the fleet's Redis: one node, Sentinel or Cluster (a
	// *redis.ClusterClient, as redis.NewUniversalClient builds it for several
	// addresses: a new fleet there spreads over the masters). Nil runs every shard in this process,
	// without leases or stream (a fleet of one, for tests and demos).
	Redis redis.UniversalClient
	// KeyPrefix of every key of the fleet, with its {hash tag}. Default
	// "{shardfleet}:". Every member and client of a fleet uses the same.
	KeyPrefix string
	// Partitions is the fleet's partition count: its per-shard keys and
	// event streams are spread over this many hash tags, so that a fleet
	// spreads over Redis Cluster's masters (README "Redis Cluster"). 0
	// follows the count the fleet stored; a new fleet gets 16 on Redis
	// Cluster and 1 on one node or Sentinel. A count that disagrees with the
	// stored one is refused.
	Partitions int
	// WorkerID names this member in the fleet. Default: a random UUID.
	WorkerID string
	// Logger gets the member's logs (worker_id attached). Default slog.Default().
	Logger *slog.Logger

	// LeaseTTL is the lifetime of the member's membership and leases: a
	// crashed member's shards move after it. LeaseRenewInterval is how often
	// it renews them; past LeaseRenewDeadline without a renewal it stops its
	// shards (it may have lost them). Defaults 15 s, 2 s, 10 s. The fleet's
	// reconcile pace and the identify limiter's crash recovery scale with
	// LeaseTTL, so compressed timings (tests) keep the same proportions.
	LeaseTTL, LeaseRenewInterval, LeaseRenewDeadline time.Duration

	// ShardCount is the bot's shard count; 0 asks Discord. The fleet's stored
	// layout wins over it.
	ShardCount int
	// MaxConcurrency is the number of identify buckets; 0 asks Discord.
	MaxConcurrency int
	// IdentifyWindow and IdentifyMargin pace IDENTIFYs per bucket, fleet-wide.
	// Defaults 5 s and 250 ms.
	IdentifyWindow, IdentifyMargin time.Duration
	// BudgetReserve: IDENTIFYs stop when the bot's daily budget is down to
	// this floor. Default 10.
	BudgetReserve int

	// EventStreamMaxLen caps the event stream approximately (0: uncapped).
	// Default 1,000,000.
	EventStreamMaxLen int64
	// EventBatchSize is the most events one commit writes; a small batch
	// waits up to EventFlushInterval to fill. Defaults 512 and 1 ms.
	EventBatchSize     int
	EventFlushInterval time.Duration

	// BacklogShardBytes bounds each shard's dispatches held in memory (for
	// Handler, then for Redis); BacklogWorkerBytes the sum over all shards.
	// A shard over either stops reading and RESUMEs once drained. Defaults
	// 4 MiB and 256 MiB.
	BacklogShardBytes, BacklogWorkerBytes int64

	// Presence seeds the fleet's presence when Redis holds none (the stored
	// one wins; fleet.Client.SetPresence changes it fleet-wide).
	Presence *gateway.PresenceUpdate

	// APIURL is Discord's REST base. Default gateway.DefaultAPIURL.
	APIURL string
	// GatewayURL, when set, skips asking Discord for it.
	GatewayURL string
	// HTTPClient for REST and websocket handshakes. Default http.DefaultClient.
	HTTPClient *http.Client
	// GatewayOptions are added to every shard's gateway options (intents,
	// compression, send rate...).
	GatewayOptions []gateway.ConfigOpt

	// ShutdownTimeout bounds the graceful stop once Run's ctx ends: every
	// shard is handed off (session saved, lease released) so other members
	// RESUME it. Default 10 s.
	ShutdownTimeout time.Duration

	// Host and HTTPAddr describe this member in its status in Redis (what
	// `worker status` lists).
	Host, HTTPAddr string

	// Handler, when set, gets the events in-process: exactly those committed
	// to the fleet's stream, once each, after their commit, in each shard's
	// seq order, one call at a time per shard (shards in parallel). A
	// member whose lease went stale never passes on what the stream refused.
	// A slow Handler slows its shard's commits, and past BacklogShardBytes
	// its reads (nothing is lost: the shard RESUMEs). Event.ID is empty:
	// there is nothing to ack. With Redis nil it gets every dispatch as the
	// gateway delivers it.
	Handler func(fleet.Event)
	// Cache is what the fleet's shared state cache in Redis keeps (README
	// "State cache"): a comma list of guilds, channels, roles, emojis,
	// voice_states, members, presences, messages; "" or "none" keeps
	// nothing. CacheMessages is how many messages per channel it keeps
	// (required with messages), and with CacheOld update and delete events
	// in the stream carry the cached object as it was (field old).
	Cache         string
	CacheMessages int
	CacheOld      bool
}

// DefaultConfig returns the defaults; set Token and Redis.
func DefaultConfig() Config {
	w, l, s := worker.DefaultConfig(), lease.DefaultConfig(), eventsink.DefaultConfig()
	return Config{
		KeyPrefix: w.KeyPrefix, Logger: w.Logger,
		LeaseTTL: l.TTL, LeaseRenewInterval: l.RenewInterval, LeaseRenewDeadline: l.RenewDeadline,
		IdentifyWindow: w.IdentifyWindow, IdentifyMargin: w.IdentifyMargin, BudgetReserve: w.BudgetReserve,
		EventStreamMaxLen: s.MaxLen, EventBatchSize: s.BatchSize, EventFlushInterval: s.FlushInterval,
		BacklogShardBytes: w.BacklogShardBytes, BacklogWorkerBytes: w.BacklogWorkerBytes,
		APIURL: w.APIURL, HTTPClient: w.HTTPClient, ShutdownTimeout: w.ShutdownTimeout,
	}
}

// validate checks what the worker does not check itself (it checks the
// rest in New, naming the same fields), or checks only when Run starts.
func (c Config) validate() error {
	switch {
	case c.LeaseTTL <= 0:
		return gateway.NewConfigError("member", "LeaseTTL", "must be positive (default 15s)")
	case c.LeaseRenewInterval <= 0:
		return gateway.NewConfigError("member", "LeaseRenewInterval", "must be positive (default 2s)")
	case c.LeaseRenewDeadline <= 0:
		return gateway.NewConfigError("member", "LeaseRenewDeadline", "must be positive (default 10s)")
	case c.EventStreamMaxLen < 0:
		return gateway.NewConfigError("member", "EventStreamMaxLen", "is negative (0: uncapped)")
	case c.EventBatchSize < 1:
		return gateway.NewConfigError("member", "EventBatchSize", "must be at least 1 (default 512)")
	case c.EventFlushInterval < 0:
		return gateway.NewConfigError("member", "EventFlushInterval", "is negative (0: commit at once)")
	}
	if _, err := c.cacheKinds(); err != nil {
		return gateway.NewConfigError("member", "Cache", err.Error())
	}
	return nil
}

// cacheKinds reads Cache ("" is none).
func (c Config) cacheKinds() (cache.Kinds, error) {
	if strings.TrimSpace(c.Cache) == "" {
		return 0, nil
	}
	return cache.ParseKinds(c.Cache)
}

// worker is the worker configuration c stands for.
func (c Config) worker() worker.Config {
	wc := worker.DefaultConfig()
	wc.Token, wc.WorkerID, wc.Logger = c.Token, c.WorkerID, c.Logger
	wc.Redis, wc.KeyPrefix = c.Redis, c.KeyPrefix
	wc.Lease.TTL, wc.Lease.RenewInterval, wc.Lease.RenewDeadline = c.LeaseTTL, c.LeaseRenewInterval, c.LeaseRenewDeadline
	wc.Lease.Partitions = c.Partitions
	// The reconcile loop's pacing scales with LeaseTTL, so compressed
	// timings (tests, demos) rebalance and join at the same relative pace.
	def := lease.DefaultConfig()
	scale := func(d time.Duration) time.Duration {
		return time.Duration(float64(d) * float64(c.LeaseTTL) / float64(def.TTL))
	}
	wc.Lease.TickInterval, wc.Lease.TickJitter = scale(def.TickInterval), scale(def.TickJitter)
	wc.Lease.JoinGrace, wc.Lease.RevokeTimeout = scale(def.JoinGrace), max(scale(def.RevokeTimeout), time.Second)
	wc.Lease.DataLossGrace = c.LeaseTTL + c.LeaseRenewDeadline
	wc.SinkOptions = []eventsink.Option{eventsink.WithMaxLen(c.EventStreamMaxLen),
		eventsink.WithBatch(c.EventBatchSize, c.EventFlushInterval)}
	wc.ShardCount, wc.MaxConcurrency = c.ShardCount, c.MaxConcurrency
	wc.BacklogShardBytes, wc.BacklogWorkerBytes = c.BacklogShardBytes, c.BacklogWorkerBytes
	wc.IdentifyWindow, wc.IdentifyMargin = c.IdentifyWindow, c.IdentifyMargin
	wc.BudgetReserve = c.BudgetReserve
	// The limiter's crash-recovery times scale with the lease TTL too, and
	// stay at least a few identify windows long.
	wc.LimiterOptions = []redislimiter.ConfigOpt{
		redislimiter.WithHoldTTL(max(scale(redislimiter.DefaultHoldTTL), 4*c.IdentifyWindow, time.Second)),
		redislimiter.WithPollInterval(max(scale(redislimiter.DefaultPollInterval), 20*time.Millisecond)),
		redislimiter.WithTicketTTL(max(scale(redislimiter.DefaultTicketTTL), 60*time.Millisecond)),
	}
	wc.APIURL, wc.GatewayURL, wc.HTTPClient = c.APIURL, c.GatewayURL, c.HTTPClient
	wc.GatewayOptions = c.GatewayOptions
	if c.LeaseTTL < def.TTL {
		wc.GatewayOptions = append(wc.GatewayOptions[:len(wc.GatewayOptions):len(wc.GatewayOptions)],
			gateway.WithReconnectBackoff(scale(time.Second), scale(time.Minute)))
	}
	wc.Presence = c.Presence
	wc.ShutdownTimeout = c.ShutdownTimeout
	wc.Info = lease.MemberInfo{Host: c.Host, HTTPAddr: c.HTTPAddr}
	wc.EventHandler = c.Handler
	kinds, _ := c.cacheKinds() // validate checked it
	wc.Cache = cache.Config{Kinds: kinds, Messages: c.CacheMessages, Old: c.CacheOld}
	return wc
}
