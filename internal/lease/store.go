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
	err := saveStateScript.Run(ctx, l.s.client, l.fencedKeys(),
		l.s.cfg.WorkerID, strconv.FormatUint(l.token, 10), st.SessionID, st.Sequence, st.ResumeURL).Err()
	return fencedErr("save session", l.key, err)
}

// ClearState deletes the shard's stored session (it is no longer valid:
// op 9 false, or a new session replaced it), fenced like SaveState.
func (l *Lease) ClearState(ctx context.Context) error {
	if l.Err() != nil {
		return fmt.Errorf("clear session %v: %w", l.key, ErrFenced)
	}
	err := clearStateScript.Run(ctx, l.s.client, l.fencedKeys(),
		l.s.cfg.WorkerID, strconv.FormatUint(l.token, 10)).Err()
	return fencedErr("clear session", l.key, err)
}

// fencedKeys are the keys of a fenced session write: lease, the holder's
// mirror in the shard's partition, session record.
func (l *Lease) fencedKeys() []string {
	k := l.s.keys
	return []string{k.Lease(l.key), k.ShardMember(l.key, l.s.cfg.WorkerID), k.Session(l.key)}
}

// fencedErr is the error of a fenced write: ErrFenced on the script's
// refusal.
func fencedErr(op string, key ShardKey, err error) error {
	switch {
	case err == nil:
		return nil
	case keyspace.IsRefusal(err, "FENCED"):
		return fmt.Errorf("%s %v: %w", op, key, ErrFenced)
	}
	return fmt.Errorf("%s %v: %w", op, key, err)
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
