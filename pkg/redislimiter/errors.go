package redislimiter

import (
	"errors"
	"fmt"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

var (
	// ErrClosed is returned by WaitBucket once Close has been called.
	ErrClosed = errors.New("redislimiter: limiter closed")

	// ErrBudgetExhausted is returned by WaitBucket instead of a permit when the
	// fleet's remaining daily session starts are at or below the reserve floor.
	// Use errors.As with *BudgetError for the figures.
	ErrBudgetExhausted = errors.New("redislimiter: identify budget exhausted")

	// ErrInvalidConfig is the class of every configuration error (see *ConfigError).
	ErrInvalidConfig = gateway.ErrInvalidConfig

	// ErrNoMaxConcurrency is returned by LoadMaxConcurrency when no value is stored.
	ErrNoMaxConcurrency = errors.New("redislimiter: no max_concurrency stored")

	// errBadEvent is returned by parseEvent for a malformed notification.
	errBadEvent = errors.New("bad limiter event")

	// errUnexpectedReply means a script answered in a shape this version does
	// not know (e.g. another version's script under the same SHA, or a proxy).
	errUnexpectedReply = errors.New("unexpected script reply")
)

// ConfigError is the project's one configuration error (gateway.ConfigError).
type ConfigError = gateway.ConfigError

// BudgetError reports the budget when a permit was refused for it. It matches
// ErrBudgetExhausted with errors.Is.
type BudgetError struct {
	Remaining int // session starts left, as kept in Redis
	Reserve   int // the configured floor
	// ResetAfter is how long until the stored budget resets, read (PTTL of
	// the budget key, which SetBudget sets to Discord's reset_after) in the
	// same script call that refused the permit. After it the key is gone and
	// grants are not limited until SetBudget stores fresh figures, so a caller
	// should re-read Discord's budget then, not retry before. 0 means unknown
	// (the key has no expiry).
	ResetAfter time.Duration
}

func (e *BudgetError) Error() string {
	msg := fmt.Sprintf("redislimiter: identify budget exhausted: %d remaining, reserve %d", e.Remaining, e.Reserve)
	if e.ResetAfter > 0 {
		msg += fmt.Sprintf(", resets in %v", e.ResetAfter.Round(time.Millisecond))
	}
	return msg
}

// Is makes errors.Is(err, ErrBudgetExhausted) true.
func (e *BudgetError) Is(target error) bool { return target == ErrBudgetExhausted }

// RetryAfter is ResetAfter: a gateway refused a permit at the floor waits
// for the budget's reset before it connects again, instead of reconnecting
// on its backoff (see gateway.IdentifyLimiter). 0 when the reset is unknown.
func (e *BudgetError) RetryAfter() time.Duration { return e.ResetAfter }
