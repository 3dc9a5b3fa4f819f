package sharding

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// Config lets you configure your ShardManager instance.
type Config struct {
	// Logger is the logger of the ShardManager. Defaults to slog.Default().
	// Shards log through it too, with shard_id attached.
	Logger *slog.Logger
	// ShardIDs is a map of shardIDs the ShardManager should manage. Leave this nil to manage all shards.
	ShardIDs map[int]struct{}
	// ShardCount is the total shard count of the ShardManager. Leave this at 0 to
	// let Discord calculate the shard count for you (GET {APIURL}/gateway/bot at
	// the first Open or OpenShard).
	ShardCount int
	// ShardSplitCount is the count a shard should be split into if it is too
	// large. This is only used if AutoScaling is enabled. Default ShardSplitCount (2).
	ShardSplitCount int
	// AutoScaling will automatically re-shard shards if they are too large (close
	// 4011). This is disabled by default; without it 4011 is a fatal ShardError.
	AutoScaling bool
	// GatewayCreateFunc is the function which is used by the ShardManager to create a new gateway.Gateway. Defaults to gateway.New.
	GatewayCreateFunc gateway.CreateFunc
	// GatewayConfigOpts are the ConfigOpt(s) which are applied to the gateway.Gateway.
	// They come after the manager's limiter, close handler, logger and URLs (so they
	// may override them: a WithCloseHandler here turns off the manager's handling of
	// fatal closes and 4011) and before WithShardID/WithShardCount (which they can't).
	GatewayConfigOpts []gateway.ConfigOpt
	// RateLimiter is the RateLimiter which is used by the ShardManager. Defaults to
	// NewRateLimiter(RateLimiterConfigOpts...), which the manager closes in Close;
	// a RateLimiter given here is not closed by the manager.
	RateLimiter RateLimiter
	// RateLimiterConfigOpts are the RateLimiterConfigOpt(s) which are applied to the RateLimiter.
	RateLimiterConfigOpts []RateLimiterConfigOpt

	// APIURL is Discord's REST base, for GET /gateway/bot, also given to every
	// gateway (gateway.WithAPIURL). Default gateway.DefaultAPIURL.
	APIURL string
	// HTTPClient makes the REST calls and is given to every gateway. Default http.DefaultClient.
	HTTPClient *http.Client
	// CloseHandler, when set, is told after the manager has handled a shard that
	// stopped for good (fatal close, or split on 4011). Default none.
	CloseHandler gateway.CloseHandlerFunc
}

// ConfigOpt is a type alias for a function that takes a Config and is used to configure your Server.
type ConfigOpt func(config *Config)

// DefaultConfig returns a Config with sensible defaults.
func DefaultConfig() *Config {
	return &Config{
		Logger:            slog.Default(),
		ShardSplitCount:   ShardSplitCount,
		GatewayCreateFunc: gateway.New,
		APIURL:            gateway.DefaultAPIURL,
		HTTPClient:        http.DefaultClient,
	}
}

// Apply applies the given ConfigOpt(s) to the Config. Nil options are skipped.
func (c *Config) Apply(opts []ConfigOpt) {
	for _, opt := range opts {
		if opt != nil {
			opt(c)
		}
	}
}

// Validate reports the first invalid field as a *ConfigError. It does not
// check the RateLimiterConfigOpts' result when a RateLimiter is given.
func (c *Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Package: "sharding", Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case c.Logger == nil:
		return bad("Logger", "must not be nil")
	case c.ShardCount < 0:
		return bad("ShardCount", "must be >= 0 (0: ask Discord), got %d", c.ShardCount)
	case c.AutoScaling && c.ShardSplitCount < 2:
		return bad("ShardSplitCount", "must be >= 2 with AutoScaling, got %d", c.ShardSplitCount)
	case c.GatewayCreateFunc == nil:
		return bad("GatewayCreateFunc", "must not be nil")
	case c.HTTPClient == nil:
		return bad("HTTPClient", "must not be nil")
	}
	for id := range c.ShardIDs {
		if id < 0 || (c.ShardCount > 0 && id >= c.ShardCount) {
			return bad("ShardIDs", "shard %d is out of range [0, %d)", id, c.ShardCount)
		}
	}
	if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("APIURL", "must be an absolute http(s) URL, got %q", c.APIURL)
	}
	for i, opt := range c.GatewayConfigOpts {
		if opt == nil {
			return bad("GatewayConfigOpts", "option %d is nil", i)
		}
	}
	if c.RateLimiter == nil {
		rl := DefaultRateLimiterConfig()
		rl.Apply(c.RateLimiterConfigOpts)
		if err := rl.Validate(); err != nil {
			return fmt.Errorf("RateLimiterConfigOpts: %w", err)
		}
	}
	return nil
}

// WithAutoScaling sets whether the ShardManager should automatically re-shard shards if they are too large. This is disabled by default.
func WithAutoScaling(autoScaling bool) ConfigOpt {
	return func(config *Config) { config.AutoScaling = autoScaling }
}

// WithGatewayConfigOpts lets you configure the gateway.Gateway created by the
// ShardManager. It appends to the options given before, into a new slice.
func WithGatewayConfigOpts(opts ...gateway.ConfigOpt) ConfigOpt {
	return func(config *Config) {
		config.GatewayConfigOpts = append(slices.Clip(config.GatewayConfigOpts), opts...)
	}
}

// WithGatewayCreateFunc sets the function which is used by the ShardManager to create a new gateway.Gateway.
func WithGatewayCreateFunc(gatewayCreateFunc gateway.CreateFunc) ConfigOpt {
	return func(config *Config) { config.GatewayCreateFunc = gatewayCreateFunc }
}

// WithLogger sets the logger of the ShardManager.
func WithLogger(logger *slog.Logger) ConfigOpt {
	return func(config *Config) { config.Logger = logger }
}

// WithRateLimiter lets you inject your own RateLimiter into the ShardManager.
func WithRateLimiter(rateLimiter RateLimiter) ConfigOpt {
	return func(config *Config) { config.RateLimiter = rateLimiter }
}

// WithRateLimiterConfigOpt lets you configure the default RateLimiter used by
// the ShardManager. It appends, into a new slice.
func WithRateLimiterConfigOpt(opts ...RateLimiterConfigOpt) ConfigOpt {
	return func(config *Config) {
		config.RateLimiterConfigOpts = append(slices.Clip(config.RateLimiterConfigOpts), opts...)
	}
}

// WithShardCount sets the shard count of the ShardManager.
func WithShardCount(shardCount int) ConfigOpt {
	return func(config *Config) { config.ShardCount = shardCount }
}

// WithShardIDs sets the shardIDs the ShardManager should manage. It replaces the
// IDs set before; no IDs means every shard of the count.
func WithShardIDs(shardIDs ...int) ConfigOpt {
	return func(config *Config) {
		if len(shardIDs) == 0 {
			config.ShardIDs = nil
			return
		}
		config.ShardIDs = make(map[int]struct{}, len(shardIDs))
		for _, id := range shardIDs {
			config.ShardIDs[id] = struct{}{}
		}
	}
}

// WithShardSplitCount sets the count a shard should be split into if it is too large. This is only used if AutoScaling is enabled.
func WithShardSplitCount(shardSplitCount int) ConfigOpt {
	return func(config *Config) { config.ShardSplitCount = shardSplitCount }
}

// WithAPIURL sets Discord's REST base (e.g. a gatewaytest server's APIURL()).
func WithAPIURL(apiURL string) ConfigOpt {
	return func(config *Config) { config.APIURL = apiURL }
}

// WithHTTPClient sets the HTTP client for REST calls and gateway handshakes.
func WithHTTPClient(client *http.Client) ConfigOpt {
	return func(config *Config) { config.HTTPClient = client }
}

// WithCloseHandler sets a handler told after the manager handled a shard that
// stopped for good.
func WithCloseHandler(handler gateway.CloseHandlerFunc) ConfigOpt {
	return func(config *Config) { config.CloseHandler = handler }
}
