package eventsink

import "errors"

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
	// ErrMixedSessions: a Commit batch holds events of more than one session.
	ErrMixedSessions = errors.New("eventsink: batch mixes sessions")
)

// ConfigError names the Config field New rejected.
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string { return "eventsink: config " + e.Field + ": " + e.Reason }

// Rejected reports whether err means the shard's writes are refused for good
// (fenced or stale session): the owner must stop the shard.
func Rejected(err error) bool {
	return errors.Is(err, ErrFenced) || errors.Is(err, ErrStaleSession)
}
