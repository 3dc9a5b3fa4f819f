package lease

import (
	"errors"
	"fmt"
	"time"

	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// Sentinel errors. Callers test them with errors.Is; they survive wrapping.
var (
	// ErrInvalidConfig: a Config field is out of range; the error is a
	// *ConfigError naming the field.
	ErrInvalidConfig = gateway.ErrInvalidConfig
	// ErrLeaseHeld: another member holds a valid lease on the shard.
	ErrLeaseHeld = errors.New("lease: held by another member")
	// ErrLeaseLost: the lease is no longer valid (expired, taken over,
	// revoked, released or self-fenced).
	ErrLeaseLost = errors.New("lease: lost")
	// ErrFenced: a write was rejected because the writer's lease is not valid
	// (a stale holder); nothing was written.
	ErrFenced = errors.New("lease: fenced (stale token)")
	// ErrSessionDone: the session is closed, orphaned, self-fenced or expired.
	ErrSessionDone = errors.New("lease: session done")
	// ErrMemberExists: a live member already uses this WorkerID.
	ErrMemberExists = errors.New("lease: worker id in use by a live member")
	// ErrDataLossGrace: Redis lost its data recently; new claims wait for the
	// grace period. The error is a *GraceError with the time left.
	ErrDataLossGrace = errors.New("lease: data-loss grace period")
	// ErrEpochChanged: Redis lost its data since the session last looked;
	// the session re-asserts its leases before it claims anything.
	ErrEpochChanged = errors.New("lease: redis epoch changed (data loss)")
	// ErrNoLayout: the fleet has no layout yet (see SetLayoutIfAbsent).
	ErrNoLayout = errors.New("lease: no fleet layout")
	// ErrNotInLayout: the shard is not part of the current layout.
	ErrNotInLayout = errors.New("lease: shard not in layout")
	// ErrInvalidShard: a ShardKey or split factor is out of range.
	ErrInvalidShard = keyspace.ErrInvalidShard
	// ErrCorrupt: a value read from Redis could not be decoded.
	ErrCorrupt = keyspace.ErrCorrupt
)

// ConfigError is the project's one configuration error (gateway.ConfigError).
type ConfigError = gateway.ConfigError

// GraceError is returned by claims during the data-loss grace period.
type GraceError struct {
	// Remaining is the server-side time left, as Redis reported it.
	Remaining time.Duration
}

func (e *GraceError) Error() string {
	return fmt.Sprintf("lease: data-loss grace period, %v left", e.Remaining)
}

// Unwrap makes errors.Is(err, ErrDataLossGrace) hold.
func (e *GraceError) Unwrap() error { return ErrDataLossGrace }

// HeldError is returned by Claim when another member holds the lease.
type HeldError struct {
	Key   ShardKey
	Owner string
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("lease: shard %d/%d held by %s", e.Key.ID, e.Key.Count, e.Owner)
}

// Unwrap makes errors.Is(err, ErrLeaseHeld) hold.
func (e *HeldError) Unwrap() error { return ErrLeaseHeld }

// Reasons a session or lease ends; Session.Err and Lease.Err wrap them.
var (
	// ErrSelfFenced: no renew succeeded within RenewDeadline.
	ErrSelfFenced = errors.New("lease: self-fenced (renew deadline passed)")
	// ErrExpired: the member key was gone when the session renewed.
	ErrExpired = errors.New("lease: membership expired")
	// ErrClosed: the session was closed or orphaned by its owner.
	ErrClosed = errors.New("lease: session closed")
	// ErrReleased: the lease was released or revoked by its holder.
	ErrReleased = errors.New("lease: released")
)
