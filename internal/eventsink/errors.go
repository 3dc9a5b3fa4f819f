package eventsink

import (
	"errors"
	"fmt"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

var (
	// ErrFenced: the writer's lease is not valid any more (another owner, a
	// newer token, or the worker's membership expired). The batch was not
	// written; the shard must be stopped.
	ErrFenced = errors.New("eventsink: lease not held (fenced)")
	// ErrStaleSession: the batch belongs to a session other than the one the
	// session record holds and does not start with READY. The batch was not
	// written; the shard must be stopped.
	ErrStaleSession = errors.New("eventsink: batch of a stale session")
	// ErrClosed: the Writer was closed or abandoned.
	ErrClosed = errors.New("eventsink: writer closed")
	// errLostRecord: the session record no longer holds the writer's session
	// although the writer committed to it (the record was lost: a Redis data
	// loss). The Writer starts the record afresh; what the stream lost of the
	// session is gone with it.
	errLostRecord = errors.New("eventsink: Redis lost the session record")
	// ErrInvalidConfig: New was given an invalid Config (a *ConfigError).
	ErrInvalidConfig = gateway.ErrInvalidConfig
	// ErrMixedSessions: a Commit batch holds events of more than one session.
	ErrMixedSessions = errors.New("eventsink: batch mixes sessions")
)

// RollbackError: Redis no longer holds writes it acknowledged to this writer
// (a replica promoted without the old master's last writes, or a restore of an
// older copy). The session record of Session is durable up to Durable
// although the writer had seen it reach Expected. The batch was not written;
// the owner RESUMEs Session from Durable so that Discord replays the lost
// events.
type RollbackError struct {
	Shard     Shard
	Session   string
	ResumeURL string // the session's resume URL, as the writer last saw it
	Durable   int
	Expected  int
}

func (e *RollbackError) Error() string {
	return fmt.Sprintf("eventsink: Redis rolled back shard %d's session record to seq %d (had %d)",
		e.Shard.ID, e.Durable, e.Expected)
}

// ConfigError is the project's one configuration error (gateway.ConfigError).
type ConfigError = gateway.ConfigError

// Rejected reports whether err means the Writer's writes are refused for good
// (fenced, stale session, or rolled back): the owner must stop the shard, or,
// after a rollback, reopen it from the durable seq.
func Rejected(err error) bool {
	var rb *RollbackError
	return errors.Is(err, ErrFenced) || errors.Is(err, ErrStaleSession) || errors.As(err, &rb)
}
