package redislimiter

import (
	"github.com/shardfleet/shardfleet/internal/keyspace"

	"log/slog"
	"time"
)

// Defaults of Config; DefaultConfig returns them.
const (
	DefaultMaxConcurrency = 1
	DefaultWindow         = 5 * time.Second
	DefaultMargin         = 250 * time.Millisecond
	DefaultKeyPrefix      = keyspace.DefaultPrefix
	DefaultHoldTTL        = 30 * time.Second
	DefaultPollInterval   = time.Second
	DefaultTicketTTL      = 10 * time.Second
	DefaultBudgetReserve  = 10
	DefaultUnlockTimeout  = 5 * time.Second
)

// Config configures a Limiter. Build it with DefaultConfig and ConfigOpts; New
// applies the options to a copy and validates the result once.
type Config struct {
	// MaxConcurrency is Discord's max_concurrency: the number of buckets.
	// Bucket = shardID % MaxConcurrency. Default 1. Must be >= 1.
	MaxConcurrency int
	// Window is the time between an unlock and the next grant of the same bucket
	// (Discord: 5 s). Default 5 s. Must be > 0.
	Window time.Duration
	// Margin is added to Window to absorb the IDENTIFY's travel time. Default
	// 250 ms. Must be >= 0.
	Margin time.Duration
	// KeyPrefix starts every Redis key and the notification channel. All keys of
	// one fleet must share it. It always contains a {hash tag} so every script
	// works on Redis Cluster: a prefix without one is wrapped ("app" and "app:"
	// become "{app}:"), by the same rule as the workers' KEY_PREFIX
	// (keyspace.NormalizePrefix), so a Go program and the workers given the
	// same prefix share one limiter. Default "{shardfleet}:".
	KeyPrefix string
	// HoldTTL is how long a permit lives in Redis when its holder never unlocks
	// (crash, lost connection). Must exceed the time from grant to IDENTIFY
	// written. Default 30 s.
	HoldTTL time.Duration
	// PollInterval caps how long a waiter sleeps without asking Redis, so a lost
	// notification only delays it. Default 1 s.
	PollInterval time.Duration
	// TicketTTL is how long a waiter's queue ticket survives without being
	// refreshed; a crashed waiter stops blocking its bucket's queue after it.
	// Default 10 s. Must be at least 3 x PollInterval.
	TicketTTL time.Duration
	// BudgetReserve is the floor of the daily session_start_limit budget: when
	// the remaining count kept in Redis (SetBudget) is at or below it, WaitBucket
	// returns ErrBudgetExhausted. Without a stored budget there is no limit.
	// Default 10. Must be >= 0.
	BudgetReserve int
	// UnlockTimeout bounds UnlockBucket's Redis call (UnlockBucket has no ctx).
	// Default 5 s.
	UnlockTimeout time.Duration
	// GrantLog makes the scripts append every grant, unlock and revoke, with
	// Redis server time, to the stream KeyPrefix+"idf:log" (see GrantLog), capped
	// at about a million entries.
	// For tests and audits. Default false.
	GrantLog bool
	// TrustNewEpoch drops the quiet period (Window + Margin) of a Redis
	// without the fleet's state that this limiter never knew. Set it only when
	// something else keeps a lost Redis from IDENTIFYing before its old users
	// are back: the workers do (internal/lease lets nobody claim a shard until
	// the holders of a lost Redis had their RenewInterval to re-assert, and
	// then for DataLossGrace), so a new fleet starts at once. A limiter that
	// saw the state before the loss still imposes the full quiet period.
	// Default false.
	TrustNewEpoch bool
	// HolderID names this limiter in the grant log. Default: random.
	HolderID string
	// Logger receives the limiter's logs. Default: slog.Default().
	Logger *slog.Logger
}

// ConfigOpt changes a Config.
type ConfigOpt func(*Config)

// DefaultConfig returns the defaults listed on Config.
func DefaultConfig() Config {
	return Config{
		MaxConcurrency: DefaultMaxConcurrency,
		Window:         DefaultWindow,
		Margin:         DefaultMargin,
		KeyPrefix:      DefaultKeyPrefix,
		HoldTTL:        DefaultHoldTTL,
		PollInterval:   DefaultPollInterval,
		TicketTTL:      DefaultTicketTTL,
		BudgetReserve:  DefaultBudgetReserve,
		UnlockTimeout:  DefaultUnlockTimeout,
	}
}

// WithMaxConcurrency sets Config.MaxConcurrency.
func WithMaxConcurrency(n int) ConfigOpt { return func(c *Config) { c.MaxConcurrency = n } }

// WithWindow sets Config.Window.
func WithWindow(d time.Duration) ConfigOpt { return func(c *Config) { c.Window = d } }

// WithMargin sets Config.Margin.
func WithMargin(d time.Duration) ConfigOpt { return func(c *Config) { c.Margin = d } }

// WithKeyPrefix sets Config.KeyPrefix (wrapped in {} when it has no hash tag).
func WithKeyPrefix(prefix string) ConfigOpt { return func(c *Config) { c.KeyPrefix = prefix } }

// WithHoldTTL sets Config.HoldTTL.
func WithHoldTTL(d time.Duration) ConfigOpt { return func(c *Config) { c.HoldTTL = d } }

// WithPollInterval sets Config.PollInterval.
func WithPollInterval(d time.Duration) ConfigOpt { return func(c *Config) { c.PollInterval = d } }

// WithTicketTTL sets Config.TicketTTL.
func WithTicketTTL(d time.Duration) ConfigOpt { return func(c *Config) { c.TicketTTL = d } }

// WithBudgetReserve sets Config.BudgetReserve.
func WithBudgetReserve(n int) ConfigOpt { return func(c *Config) { c.BudgetReserve = n } }

// WithUnlockTimeout sets Config.UnlockTimeout.
func WithUnlockTimeout(d time.Duration) ConfigOpt { return func(c *Config) { c.UnlockTimeout = d } }

// WithGrantLog sets Config.GrantLog.
func WithGrantLog(on bool) ConfigOpt { return func(c *Config) { c.GrantLog = on } }

// WithTrustNewEpoch sets Config.TrustNewEpoch.
func WithTrustNewEpoch(on bool) ConfigOpt { return func(c *Config) { c.TrustNewEpoch = on } }

// WithHolderID sets Config.HolderID.
func WithHolderID(id string) ConfigOpt { return func(c *Config) { c.HolderID = id } }

// WithLogger sets Config.Logger.
func WithLogger(logger *slog.Logger) ConfigOpt { return func(c *Config) { c.Logger = logger } }

// validate checks every field once; the error names the first bad one.
func (c *Config) validate() error {
	bad := func(field, reason string) error {
		return &ConfigError{Package: "redislimiter", Field: field, Reason: reason}
	}
	switch {
	case c.MaxConcurrency < 1:
		return bad("MaxConcurrency", "must be >= 1")
	case c.Window <= 0:
		return bad("Window", "must be > 0")
	case c.Margin < 0:
		return bad("Margin", "must be >= 0")
	case c.KeyPrefix == "":
		return bad("KeyPrefix", "must not be empty")
	case c.HoldTTL < time.Millisecond:
		return bad("HoldTTL", "must be >= 1ms")
	case c.PollInterval < time.Millisecond:
		return bad("PollInterval", "must be >= 1ms")
	case c.TicketTTL < 3*c.PollInterval:
		return bad("TicketTTL", "must be >= 3 x PollInterval")
	case c.BudgetReserve < 0:
		return bad("BudgetReserve", "must be >= 0")
	case c.UnlockTimeout <= 0:
		return bad("UnlockTimeout", "must be > 0")
	case c.Logger == nil:
		return bad("Logger", "must not be nil")
	}
	return nil
}
