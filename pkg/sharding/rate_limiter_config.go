package sharding

import (
	"fmt"
	"log/slog"
	"time"
)

// Defaults of RateLimiterConfig.
const (
	// DefaultIdentifyWait is Discord's identify window per bucket.
	DefaultIdentifyWait = 5 * time.Second
	// DefaultIdentifyMargin is added to every window, for clock and network slack.
	DefaultIdentifyMargin = 250 * time.Millisecond
)

// RateLimiterConfig lets you configure your RateLimiter instance.
type RateLimiterConfig struct {
	// MaxConcurrency is the number of buckets (Discord's max_concurrency); a shard's
	// bucket is shardID % MaxConcurrency. Default MaxConcurrency (1). When the
	// ShardManager asks GET /gateway/bot, the answer is the default instead, and
	// WithMaxConcurrency still wins.
	MaxConcurrency int
	// Logger receives the limiter's debug logs. Default slog.Default().
	Logger *slog.Logger
	// IdentifyWait is the window: the next permit of a bucket is granted no
	// sooner than IdentifyWait+Margin after the previous one was unlocked.
	// Default DefaultIdentifyWait (5 s).
	IdentifyWait time.Duration
	// Margin is added to IdentifyWait. Default DefaultIdentifyMargin (250 ms).
	Margin time.Duration
}

// RateLimiterConfigOpt is a type alias for a function that takes a RateLimiterConfig and is used to configure your Server.
type RateLimiterConfigOpt func(config *RateLimiterConfig)

// DefaultRateLimiterConfig returns a RateLimiterConfig with sensible defaults.
func DefaultRateLimiterConfig() *RateLimiterConfig {
	return &RateLimiterConfig{
		MaxConcurrency: MaxConcurrency,
		Logger:         slog.Default(),
		IdentifyWait:   DefaultIdentifyWait,
		Margin:         DefaultIdentifyMargin,
	}
}

// Apply applies the given RateLimiterConfigOpt(s) to the RateLimiterConfig.
// Nil options are skipped.
func (c *RateLimiterConfig) Apply(opts []RateLimiterConfigOpt) {
	for _, opt := range opts {
		if opt != nil {
			opt(c)
		}
	}
}

// Validate reports the first invalid field as a *ConfigError.
func (c *RateLimiterConfig) Validate() error {
	switch {
	case c.MaxConcurrency < 1:
		return &ConfigError{Package: "sharding", Field: "RateLimiterConfig.MaxConcurrency", Reason: fmt.Sprintf("must be >= 1, got %d", c.MaxConcurrency)}
	case c.Logger == nil:
		return &ConfigError{Package: "sharding", Field: "RateLimiterConfig.Logger", Reason: "must not be nil"}
	case c.IdentifyWait < 0:
		return &ConfigError{Package: "sharding", Field: "RateLimiterConfig.IdentifyWait", Reason: fmt.Sprintf("must be >= 0, got %s", c.IdentifyWait)}
	case c.Margin < 0:
		return &ConfigError{Package: "sharding", Field: "RateLimiterConfig.Margin", Reason: fmt.Sprintf("must be >= 0, got %s", c.Margin)}
	}
	return nil
}

// WithMaxConcurrency sets the maximum number of concurrent identifies in 5 seconds.
func WithMaxConcurrency(maxConcurrency int) RateLimiterConfigOpt {
	return func(config *RateLimiterConfig) { config.MaxConcurrency = maxConcurrency }
}

// WithRateLimiterLogger sets the logger for the RateLimiter.
func WithRateLimiterLogger(logger *slog.Logger) RateLimiterConfigOpt {
	return func(config *RateLimiterConfig) { config.Logger = logger }
}

// WithIdentifyWait sets the identify window of every bucket (default 5 s).
func WithIdentifyWait(wait time.Duration) RateLimiterConfigOpt {
	return func(config *RateLimiterConfig) { config.IdentifyWait = wait }
}

// WithIdentifyMargin sets the slack added to every window (default 250 ms).
func WithIdentifyMargin(margin time.Duration) RateLimiterConfigOpt {
	return func(config *RateLimiterConfig) { config.Margin = margin }
}
