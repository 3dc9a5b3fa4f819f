package lease

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// SaveState stores the shard's resumable session under the lease's token,
// in one script that checks the lease is valid; a stale holder gets ErrFenced
// and nothing is written. Store the last *committed* sequence: the next owner
// resumes from it, so a sequence ahead of what was committed loses events.
func (l *Lease) SaveState(ctx context.Context, st gateway.ShardState) error {
	if l.Err() != nil {
		return fmt.Errorf("save session %v: %w", l.key, ErrFenced)
	}
	n, err := saveStateScript.Run(ctx, l.s.client,
		[]string{l.s.keys.Lease(l.key), l.s.memKey, l.s.keys.Session(l.key)},
		l.s.cfg.WorkerID, strconv.FormatUint(l.token, 10), st.SessionID, st.Sequence, st.ResumeURL).Int64()
	if err != nil {
		return fmt.Errorf("save session %v: %w", l.key, err)
	}
	if n != 1 {
		return fmt.Errorf("save session %v: %w", l.key, ErrFenced)
	}
	return nil
}

// ClearState deletes the shard's stored session (it is no longer valid:
// op 9 false, or a new session replaced it), fenced like SaveState.
func (l *Lease) ClearState(ctx context.Context) error {
	if l.Err() != nil {
		return fmt.Errorf("clear session %v: %w", l.key, ErrFenced)
	}
	n, err := clearStateScript.Run(ctx, l.s.client,
		[]string{l.s.keys.Lease(l.key), l.s.memKey, l.s.keys.Session(l.key)},
		l.s.cfg.WorkerID, strconv.FormatUint(l.token, 10)).Int64()
	if err != nil {
		return fmt.Errorf("clear session %v: %w", l.key, err)
	}
	if n != 1 {
		return fmt.Errorf("clear session %v: %w", l.key, ErrFenced)
	}
	return nil
}

// LoadState reads the stored session of a shard; the zero ShardState means
// none. Anyone may read it (a new owner gets it from Claim and Run already).
func LoadState(ctx context.Context, client redis.UniversalClient, keys Keys, key ShardKey) (gateway.ShardState, error) {
	vals, err := client.HMGet(ctx, keys.Session(key), keyspace.SessionFields...).Result()
	if err != nil {
		return gateway.ShardState{}, fmt.Errorf("load session %v: %w", key, err)
	}
	rec, err := keyspace.ParseSession(vals)
	if err != nil {
		return gateway.ShardState{}, fmt.Errorf("load session %v: %w", key, err)
	}
	return gateway.ShardState{SessionID: rec.SessionID, Sequence: rec.Sequence, ResumeURL: rec.ResumeURL}, nil
}

// LoadState reads the stored session of a shard (see the package function).
func (s *Session) LoadState(ctx context.Context, key ShardKey) (gateway.ShardState, error) {
	return LoadState(ctx, s.client, s.keys, key)
}
