package sharding

import (
	"errors"
	"fmt"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// Sentinel errors.
var (
	// ErrShardAlreadyOpen: the shard ID is already open or opening in this manager.
	ErrShardAlreadyOpen = errors.New("sharding: shard already open")
	// ErrShardNotFound: no shard with that ID is open or opening in this manager.
	ErrShardNotFound = errors.New("sharding: shard not found")
	// ErrManagerClosed: the manager was closed; it does not open shards any more.
	ErrManagerClosed = errors.New("sharding: manager closed")
	// ErrShardRemoved: the shard was closed or handed off while it was opening.
	ErrShardRemoved = errors.New("sharding: shard closed while opening")
	// ErrLimiterClosed: the RateLimiter was closed; waiters are released with it
	// and later WaitBucket calls fail with it at once.
	ErrLimiterClosed = errors.New("sharding: rate limiter closed")
	// ErrUnauthorized: GET /gateway/bot answered 401; the token is wrong.
	ErrUnauthorized = errors.New("sharding: token rejected (401)")
	// ErrInvalidConfig is wrapped by every *ConfigError.
	ErrInvalidConfig = gateway.ErrInvalidConfig
)

// ConfigError is the project's one configuration error (gateway.ConfigError).
type ConfigError = gateway.ConfigError

// ShardError is the failure of one shard: opening it, or a fatal close later.
type ShardError struct {
	ShardID    int
	ShardCount int
	Err        error
}

func (e *ShardError) Error() string {
	return fmt.Sprintf("shard %d/%d: %v", e.ShardID, e.ShardCount, e.Err)
}

func (e *ShardError) Unwrap() error { return e.Err }

// GatewayBotError is a non-200 answer from GET /gateway/bot. It never holds
// the token.
type GatewayBotError struct {
	StatusCode int
	Message    string  // Discord's "message", or a short body excerpt
	RetryAfter float64 // seconds, on 429
	Err        error   // ErrUnauthorized on 401, else nil
}

func (e *GatewayBotError) Error() string {
	msg := fmt.Sprintf("sharding: GET /gateway/bot: status %d", e.StatusCode)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %.3gs)", e.RetryAfter)
	}
	return msg
}

func (e *GatewayBotError) Unwrap() error { return e.Err }
