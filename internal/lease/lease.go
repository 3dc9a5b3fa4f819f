package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/shardfleet/shardfleet/internal/keyspace"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// Lease is the session's ownership of one shard, with its fencing token.
//
// Done closes when the lease ends for any reason: released, revoked by Run,
// found lost, or the session ended (self-fence included). The holder must stop
// using the shard as soon as Done closes; Context is cancelled at the same
// moment. All methods are safe for concurrent use.
type Lease struct {
	s      *Session
	key    ShardKey
	token  uint64
	ctx    context.Context
	cancel context.CancelCauseFunc
}

func newLease(s *Session, key ShardKey, token uint64) *Lease {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &Lease{s: s, key: key, token: token, ctx: ctx, cancel: cancel}
}

// Key is the leased shard.
func (l *Lease) Key() ShardKey { return l.key }

// Token is the fencing token: it only grows from one grant of a shard to the
// next, across Redis restarts too. Downstream writers compare it.
func (l *Lease) Token() uint64 { return l.token }

// Owner is the worker ID of the holder (the session's ID).
func (l *Lease) Owner() string { return l.s.cfg.WorkerID }

// Done closes when the lease ends.
func (l *Lease) Done() <-chan struct{} { return l.ctx.Done() }

// Context is cancelled when the lease ends; its cause is Err.
func (l *Lease) Context() context.Context { return l.ctx }

// Err is nil while the lease lives, then says why it ended (ErrReleased,
// ErrLeaseLost, ErrSelfFenced when its partition alone self-fenced, or the
// session's end: ErrSessionDone wrapping ErrSelfFenced...).
func (l *Lease) Err() error {
	if l.ctx.Err() == nil {
		return nil
	}
	return context.Cause(l.ctx)
}

func (l *Lease) end(cause error) { l.cancel(cause) }

// Claim takes the lease on key for this session. It returns the session's
// existing lease if it holds one already, a *HeldError (ErrLeaseHeld) if
// another member holds a valid lease, a *GraceError (ErrDataLossGrace) during
// the data-loss grace unless this member held the shard, ErrEpochChanged if
// Redis lost data the session has not yet noticed (it will re-assert on its
// next renew), or ErrSessionDone.
func (s *Session) Claim(ctx context.Context, key ShardKey) (*Lease, error) {
	if err := key.Validate(); err != nil {
		return nil, fmt.Errorf("claim %v: %w", key, err)
	}
	res, err := s.claimBatch(ctx, []ShardKey{key})
	if err != nil {
		return nil, err
	}
	return res[0].lease, res[0].err
}

// claimResult is one shard's outcome of a batch claim.
type claimResult struct {
	key   ShardKey
	lease *Lease
	state gateway.ShardState
	err   error
}

// claimBatch claims keys, one script run per partition (two if some holder
// was unknown to the caller). Keys the session holds already come back as
// they are; a partition that could not be claimed in (Redis error, data loss
// not yet re-asserted, partition self-fenced) gives its keys that error.
//
// Claims of one session are serialized (claimMu): two concurrent claims of
// one key would otherwise both win, the second with a new token, leaving the
// first lease silently stale. claimMu is never taken by the keep-alive.
func (s *Session) claimBatch(ctx context.Context, keys []ShardKey) ([]claimResult, error) {
	s.claimMu.Lock()
	defer s.claimMu.Unlock()
	out := make([]claimResult, len(keys))
	var todo []int
	s.mu.Lock()
	for i, k := range keys {
		out[i].key = k
		if l := s.leases[k]; l != nil {
			out[i].lease = l
		} else {
			todo = append(todo, i)
		}
	}
	s.mu.Unlock()
	if err := s.aliveErr(); err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	if len(todo) == 0 {
		return out, nil
	}
	req := uuid.NewString()
	known := make(map[string]bool)
	for _, m := range s.Members() {
		known[m.ID] = true
	}
	// One script per partition: a script touches one slot.
	byPart := make(map[int][]int)
	for _, i := range todo {
		p := s.keys.PartitionOf(keys[i])
		byPart[p] = append(byPart[p], i)
	}
	for _, p := range slices.Sorted(maps.Keys(byPart)) {
		idx := byPart[p]
		res, err := s.claimPartition(ctx, p, keys, idx, req, known)
		for j, i := range idx {
			if err != nil {
				out[i] = claimResult{key: keys[i], err: err}
			} else {
				out[i] = s.claimOutcome(keys[i], res[j])
			}
		}
	}
	return out, nil
}

// claimPartition claims keys[idx] (all of partition p) in one script run, two
// if some holder was unknown to the caller.
func (s *Session) claimPartition(ctx context.Context, p int, keys []ShardKey, idx []int, req string, known map[string]bool) ([]rawClaim, error) {
	s.mu.Lock()
	st := s.parts[p]
	s.mu.Unlock()
	if st.fenced {
		return nil, fmt.Errorf("claim: partition %d not renewed: %w", p, ErrSelfFenced)
	}
	for attempt := 0; ; attempt++ {
		res, err := s.runClaim(ctx, p, st.epoch, keys, idx, req, known)
		if err != nil {
			return nil, err
		}
		unknown := false
		for _, r := range res {
			if r.status == "unknown" && !known[r.owner] {
				known[r.owner] = true
				unknown = true
			}
		}
		if !unknown || attempt > 0 {
			return res, nil
		}
		// again, with the holders' mirrors in KEYS
	}
}

// rawClaim is one lease's reply from the claim script.
type rawClaim struct {
	status, owner string
	corrupt       string // the error of a session record the claim dropped
	token         uint64
	state         gateway.ShardState
	grace         time.Duration
}

func (s *Session) runClaim(ctx context.Context, p int, epoch string, keys []ShardKey, idx []int, req string, known map[string]bool) ([]rawClaim, error) {
	k := s.keys
	rkeys := make([]string, 0, 4+2*len(idx)+len(known))
	rkeys = append(rkeys, k.PartitionMember(p, s.cfg.WorkerID), k.PartitionEpoch(p), k.Grace(p), k.Fence(p))
	for _, i := range idx {
		rkeys = append(rkeys, k.Lease(keys[i]))
	}
	for _, i := range idx {
		rkeys = append(rkeys, k.Session(keys[i]))
	}
	for id := range known {
		if id != s.cfg.WorkerID {
			rkeys = append(rkeys, k.PartitionMember(p, id))
		}
	}
	res, err := claimScript.Run(ctx, s.client, rkeys, s.cfg.WorkerID, epoch, req, len(idx), k.PartitionPrefix(p)).Slice()
	switch r, _ := keyspace.ParseRefusal(err); r.Code {
	case "EPOCH":
		return nil, fmt.Errorf("claim: %w", ErrEpochChanged)
	case "GONE":
		return nil, fmt.Errorf("claim: %w", ErrExpired)
	}
	if err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	if len(res) != len(idx) {
		return nil, fmt.Errorf("claim: %w: %d results for %d shards", ErrCorrupt, len(res), len(idx))
	}
	out := make([]rawClaim, len(idx))
	for j := range idx {
		r, err := parseRawClaim(res[j])
		if err != nil {
			return nil, fmt.Errorf("claim %v: %w", keys[idx[j]], err)
		}
		out[j] = r
	}
	return out, nil
}

func parseRawClaim(v any) (rawClaim, error) {
	f, _ := v.([]any)
	str := func(i int) string {
		if i < len(f) && f[i] != nil {
			return fmt.Sprint(f[i])
		}
		return ""
	}
	r := rawClaim{status: str(0)}
	switch r.status {
	case "ok":
		tok, err := strconv.ParseUint(str(1), 10, 64)
		if err != nil || tok == 0 { // tokens come from server time: 0 is never one
			return r, fmt.Errorf("%w: token %q", ErrCorrupt, str(1))
		}
		seq, err := strconv.Atoi(str(3))
		if err != nil {
			seq = 0 // a corrupt seq only costs a resume; the session id decides
		}
		r.token = tok
		r.state = gateway.ShardState{SessionID: str(2), Sequence: seq, ResumeURL: str(4)}
		r.corrupt = str(5)
	case "held", "unknown":
		r.owner = str(1)
	case "grace":
		ms, _ := strconv.ParseInt(str(1), 10, 64)
		r.grace = time.Duration(ms) * time.Millisecond
	default:
		return r, fmt.Errorf("%w: claim status %q", ErrCorrupt, r.status)
	}
	return r, nil
}

func (s *Session) claimOutcome(key ShardKey, r rawClaim) claimResult {
	switch r.status {
	case "ok":
		if r.corrupt != "" {
			s.log.Warn("lease: dropped a corrupt session record; the shard will IDENTIFY",
				slog.Int("shard_id", key.ID), slog.Int("shard_count", key.Count), slog.String("error", r.corrupt))
		}
		l := newLease(s, key, r.token)
		s.mu.Lock()
		if old := s.leases[key]; old != nil { // a concurrent Claim won locally
			s.mu.Unlock()
			return claimResult{key: key, lease: old}
		}
		s.leases[key] = l
		s.mu.Unlock()
		if err := s.aliveErr(); err != nil { // ended while we claimed
			s.drop(l, err)
			return claimResult{key: key, err: fmt.Errorf("claim %v: %w", key, err)}
		}
		s.log.Debug("lease: claimed", slog.Int("shard_id", key.ID), slog.Int("shard_count", key.Count),
			slog.Uint64("token", r.token))
		return claimResult{key: key, lease: l, state: r.state}
	case "grace":
		return claimResult{key: key, err: fmt.Errorf("claim %v: %w", key, &GraceError{Remaining: r.grace})}
	default: // held, or held by a member unknown twice over: conservative
		return claimResult{key: key, err: fmt.Errorf("claim: %w", &HeldError{Key: key, Owner: r.owner})}
	}
}

// aliveErr is the session's end cause, or nil while it lives.
func (s *Session) aliveErr() error {
	select {
	case <-s.done:
		return s.Err()
	default:
		return nil
	}
}

// Release ends the lease (Done closes first, so stop the shard before), then
// deletes it in Redis if it still carries this token. Releasing a lease that
// expired or was released already is not an error; ErrFenced means another
// member holds the shard now (its lease is untouched).
//
// When Redis cannot be reached, the lease is remembered and released again
// on Run's next tick and by Close: tied to the live member key, it would
// otherwise block the shard for as long as the session lives.
func (l *Lease) Release(ctx context.Context) error {
	l.s.drop(l, ErrReleased)
	err := l.s.releaseBatch(ctx, []*Lease{l})
	if err != nil && !errors.Is(err, ErrFenced) {
		l.s.mu.Lock()
		l.s.unreleased = append(l.s.unreleased, l)
		l.s.mu.Unlock()
	}
	return err
}

// retryReleases releases again the leases whose Release failed to reach
// Redis.
func (s *Session) retryReleases(ctx context.Context) {
	s.mu.Lock()
	pending := s.unreleased
	s.unreleased = nil
	s.mu.Unlock()
	if len(pending) == 0 {
		return
	}
	if err := s.releaseBatch(ctx, pending); err != nil && !errors.Is(err, ErrFenced) {
		s.mu.Lock()
		s.unreleased = append(s.unreleased, pending...)
		s.mu.Unlock()
		s.log.Warn("lease: release again", slog.Int("leases", len(pending)), slog.Any("error", err))
	}
}

// releaseBatch releases leases, one script per partition. It returns the
// first error: a Redis error (the caller retries them all: releasing again is
// harmless) before ErrFenced.
func (s *Session) releaseBatch(ctx context.Context, leases []*Lease) error {
	byPart := make(map[int][]*Lease)
	for _, l := range leases {
		p := s.keys.PartitionOf(l.key)
		byPart[p] = append(byPart[p], l)
	}
	var fenced error
	for _, p := range slices.Sorted(maps.Keys(byPart)) {
		part := byPart[p]
		keys := make([]string, len(part))
		args := make([]any, 0, len(part)+1)
		args = append(args, s.cfg.WorkerID)
		for i, l := range part {
			keys[i] = s.keys.Lease(l.key)
			args = append(args, strconv.FormatUint(l.token, 10))
		}
		res, err := releaseScript.Run(ctx, s.client, keys, args...).Int64Slice()
		if err != nil {
			return fmt.Errorf("release %d leases: %w", len(part), err)
		}
		for i, r := range res {
			if r < 0 && fenced == nil {
				fenced = fmt.Errorf("release %v: %w", part[i].key, ErrFenced)
			}
		}
	}
	return fenced
}

// Valid asks Redis whether the lease is still valid (token, owner and member
// key). A lease whose Done has closed is never valid, whatever Redis says.
func (l *Lease) Valid(ctx context.Context) (bool, error) {
	if l.Err() != nil {
		return false, nil
	}
	err := validScript.Run(ctx, l.s.client, []string{l.s.keys.Lease(l.key), l.s.keys.ShardMember(l.key, l.s.cfg.WorkerID)},
		l.s.cfg.WorkerID, strconv.FormatUint(l.token, 10)).Err()
	if keyspace.IsRefusal(err, "FENCED") {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check lease %v: %w", l.key, err)
	}
	return true, nil
}
