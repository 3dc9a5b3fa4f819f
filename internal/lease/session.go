package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
)

// Session is one worker's membership in the fleet and the owner of its leases.
//
// NewSession registers the member key, and its mirror in every partition, and
// starts one keep-alive goroutine that renews them (hence every lease of the
// session) every RenewInterval in one pipeline. When no renew of the
// fleet-wide member key succeeds within RenewDeadline of the moment the last
// successful renew was sent, the session self-fences: every lease's Done and
// the session's Done close at once. A self-fenced, expired, closed or
// orphaned session is finished; make a new one. A partition whose mirror
// cannot be renewed (its Redis Cluster master is down) self-fences alone: its
// leases end at its deadline, the others live on.
//
// All methods are safe for concurrent use.
type Session struct {
	client redis.UniversalClient
	cfg    Config
	clock  clock // local durations that safety rests on; realClock outside tests
	keys   Keys
	log    *slog.Logger
	info   string // member key value (JSON MemberInfo)
	memKey string

	stop     chan struct{} // closed to stop the keep-alive
	stopOnce sync.Once
	exited   chan struct{} // closed when the keep-alive goroutine returns
	done     chan struct{}
	doneOnce sync.Once
	cause    atomic.Pointer[error] // why done closed; set before it closes

	claimMu sync.Mutex // serializes claims (see claimBatch)

	mu         sync.Mutex
	leases     map[ShardKey]*Lease
	unreleased []*Lease    // released locally, not yet in Redis; guarded by mu
	epoch      string      // epoch this session knows; guarded by mu
	parts      []partState // per partition; guarded by mu
	layout     Layout      // last layout seen, re-written after data loss; guarded by mu

	view   atomic.Pointer[view]
	viewCh chan struct{}        // capacity 1: "the view changed", for Run
	wait   atomic.Pointer[Wait] // what Run's last tick left unclaimed, and why
	joined time.Time            // on clock: when register was sent
}

// partState is the session's view of one partition.
type partState struct {
	epoch  string    // the partition's epoch this session knows
	lastOK time.Time // on clock: when the last renew of the mirror that succeeded was sent
	fenced bool      // its renew deadline passed: its leases ended; a renew lifts it
}

// Wait is what the last reconcile tick of Run left undone: Pending shards
// are assigned to this worker but not held, because of Reason, until Until
// (zero when not known: another worker still holds them, until it hands them
// over). Settled is false until a tick could compute the assignment (the
// first renew and the layout are needed).
type Wait struct {
	Settled bool
	Pending int
	Reason  string
	Until   time.Time
}

// JoiningReason is the Wait.Reason before the first assignment.
const JoiningReason = "joining the fleet: waiting for the first renew and the fleet layout"

// Waiting is what the last tick of Run left unclaimed.
func (s *Session) Waiting() Wait {
	if w := s.wait.Load(); w != nil {
		return *w
	}
	return Wait{Reason: JoiningReason}
}

// view is what the last successful renew saw, published as an immutable
// snapshot.
type view struct {
	now           time.Time // server time of the renew
	members       []Member
	layoutVersion int64
}

// Member is a live member of the fleet as the last renew saw it.
type Member struct {
	ID    string
	Since time.Time // server time it joined
}

// NewSession validates cfg (defaults applied to zero fields), registers this
// worker's member key and starts the keep-alive. ctx bounds registration only.
//
// The client should not read from replicas. Use a client with
// ContextTimeoutEnabled so that ctx deadlines bound socket reads; self-fencing
// does not depend on it (it is timer driven), but Close and Orphan wait for an
// in-flight renew.
func NewSession(ctx context.Context, client redis.UniversalClient, cfg Config) (*Session, error) {
	return newSessionHooked(ctx, client, cfg, sessionHooks{})
}

// sessionHooks are seams for tests in this package; NewSession uses none.
type sessionHooks struct {
	clock          clock // nil: realClock
	skipValidation bool  // negative controls only: run timings validate rejects
}

func newSessionHooked(ctx context.Context, client redis.UniversalClient, cfg Config, h sessionHooks) (*Session, error) {
	if client == nil {
		return nil, &ConfigError{Package: "lease", Field: "client", Reason: "nil redis client"}
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil && !h.skipValidation {
		return nil, err
	}
	if h.clock == nil {
		h.clock = realClock{}
	}
	info := cfg.Info
	info.ID = cfg.WorkerID
	info.StartedAt = time.Now().UTC()
	infoJSON, err := json.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("encode member info: %w", err)
	}
	keys, err := ResolvePartitions(ctx, client, NewKeys(cfg.Prefix), cfg.Partitions)
	if err != nil {
		return nil, err
	}
	cfg.Partitions = keys.Partitions()
	s := &Session{
		client: client,
		cfg:    cfg,
		clock:  h.clock,
		keys:   keys,
		parts:  make([]partState, keys.Partitions()),
		log:    cfg.Logger.With(slog.String("worker_id", cfg.WorkerID)),
		info:   string(infoJSON),
		stop:   make(chan struct{}),
		exited: make(chan struct{}),
		done:   make(chan struct{}),
		leases: make(map[ShardKey]*Lease),
		viewCh: make(chan struct{}, 1),
	}
	s.memKey = s.keys.Member(cfg.WorkerID)
	sent := s.clock.Now()
	s.joined = sent
	if err := s.register(ctx, sent); err != nil {
		return nil, err
	}
	go s.keepAlive(sent)
	return s, nil
}

// register writes the member key and its mirror in every partition, in one
// pipeline (the partitions first: with one partition the mirror and epoch are
// the fleet-wide keys, and the partition's register is the one that sets the
// probe grace of a new epoch).
func (s *Session) register(ctx context.Context, sent time.Time) error {
	k := s.keys
	calls := make([]keyspace.Call, 0, k.Partitions()+1)
	for p := range k.Partitions() {
		calls = append(calls, s.partRegisterCall(p))
	}
	calls = append(calls, keyspace.Call{Script: registerScript,
		Keys: []string{s.memKey, k.Members(), k.MembersSince(), k.Epoch()},
		Args: []any{s.cfg.WorkerID, s.info, s.cfg.TTL.Milliseconds(), uuid.NewString()}})
	cmds := keyspace.RunPipelined(ctx, s.client, calls)
	epochs := make([]string, len(cmds))
	created := false
	for i, cmd := range cmds {
		ep, c, err := parseRegister(cmd)
		if keyspace.IsRefusal(err, "EXISTS") {
			return s.unregister(ctx, cmds, fmt.Errorf("register member %s: %w", s.cfg.WorkerID, ErrMemberExists))
		}
		if err != nil {
			return s.unregister(ctx, cmds, fmt.Errorf("register member: %w", err))
		}
		epochs[i], created = ep, created || c
	}
	if created {
		s.wait.Store(&Wait{Reason: GraceReason, Until: time.Now().Add(s.cfg.DataLossProbe)})
		s.log.Info("lease: created an epoch; waiting for holders of a lost Redis to re-assert before claiming",
			slog.String("reason", "data-loss probe"), slog.Duration("wait", s.cfg.DataLossProbe))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch = epochs[len(epochs)-1]
	for p := range s.parts {
		s.parts[p] = partState{epoch: epochs[p], lastOK: sent}
	}
	return nil
}

// unregister takes back the member keys that the calls of a failed register
// (cmds: the partitions' in order, then the fleet-wide one) wrote, and
// returns err, the register's failure. Left behind, each key would refuse
// the worker's next attempt, whose info has another StartedAt, for a whole
// TTL (a worker rejoining after a failover retried into its own keys for
// seconds), and the fleet-wide one would list a member that claims nothing.
func (s *Session) unregister(ctx context.Context, cmds []*redis.Cmd, err error) error {
	k := s.keys
	var calls []keyspace.Call
	for i, cmd := range cmds {
		if cmd.Err() != nil {
			continue // refused or failed: wrote nothing
		}
		keys := []string{s.memKey, k.Members(), k.MembersSince()}
		if i < k.Partitions() {
			keys = []string{k.PartitionMember(i, s.cfg.WorkerID)}
		}
		calls = append(calls, keyspace.Call{Script: unregisterScript, Keys: keys, Args: []any{s.cfg.WorkerID, s.info}})
	}
	for _, cmd := range keyspace.RunPipelined(ctx, s.client, calls) {
		if uerr := cmd.Err(); uerr != nil {
			return errors.Join(err, fmt.Errorf("take back the member keys a failed register wrote: %w", uerr))
		}
	}
	return err
}

// partRegisterCall writes the worker's mirror in partition p.
func (s *Session) partRegisterCall(p int) keyspace.Call {
	k := s.keys
	return keyspace.Call{Script: partRegisterScript,
		Keys: []string{k.PartitionMember(p, s.cfg.WorkerID), k.PartitionEpoch(p), k.Grace(p)},
		Args: []any{s.cfg.WorkerID, s.info, s.cfg.TTL.Milliseconds(), uuid.NewString(),
			s.cfg.DataLossProbe.Milliseconds()}}
}

// parseRegister reads a register reply {epoch, created}.
func parseRegister(cmd *redis.Cmd) (epoch string, created bool, err error) {
	res, err := cmd.Slice()
	if err != nil {
		return "", false, err
	}
	if len(res) != 2 {
		return "", false, fmt.Errorf("%w: reply %v", ErrCorrupt, res)
	}
	epoch, _ = res[0].(string)
	c, _ := res[1].(int64)
	return epoch, c == 1, nil
}

// ID is this member's worker ID.
func (s *Session) ID() string { return s.cfg.WorkerID }

// Keys are the fleet's key names (for the worker's fenced writes).
func (s *Session) Keys() Keys { return s.keys }

// Config is the session's configuration, defaults applied.
func (s *Session) Config() Config { return s.cfg }

// Done closes when the session ends: self-fenced, expired, closed or orphaned.
// Every lease's Done has closed by then.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err says why Done closed (nil before): it wraps ErrSessionDone and one of
// ErrSelfFenced, ErrExpired or ErrClosed.
func (s *Session) Err() error {
	if p := s.cause.Load(); p != nil {
		return *p
	}
	return nil
}

// Members is the live membership as of the last successful renew, sorted by
// ID (nil before the first renew).
func (s *Session) Members() []Member {
	if v := s.view.Load(); v != nil {
		return v.members
	}
	return nil
}

// Leases returns the leases the session holds now.
func (s *Session) Leases() []*Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Lease, 0, len(s.leases))
	for _, l := range s.leases {
		out = append(out, l)
	}
	return out
}

// Lease returns the lease the session holds on key, or nil.
func (s *Session) Lease(key ShardKey) *Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leases[key]
}

// finish ends the session once: every lease ends with cause, then Done closes.
func (s *Session) finish(reason error) {
	s.doneOnce.Do(func() {
		cause := fmt.Errorf("%w: %w", ErrSessionDone, reason)
		s.cause.Store(&cause)
		s.mu.Lock()
		leases := s.leases
		s.leases = make(map[ShardKey]*Lease)
		s.mu.Unlock()
		for _, l := range leases {
			l.end(cause)
		}
		close(s.done)
		if !errors.Is(reason, ErrClosed) {
			s.log.Warn("lease: session ended; all leases fenced", slog.Any("reason", reason), slog.Int("leases", len(leases)))
		}
	})
}

// Orphan stops renewing without releasing anything, as if the process had
// died: the member key and leases stay in Redis until the TTL expires them.
// Done closes (the leases must not be used any more). It waits for the
// keep-alive goroutine. For tests and crash simulation.
func (s *Session) Orphan() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.exited
	s.finish(ErrClosed)
}

// Close stops the keep-alive, ends every lease, then releases them and
// deletes the member key, so other members may claim at once. The caller must
// have stopped every shard first (see Drain). ctx bounds the Redis calls; on
// error the keys expire after the TTL anyway. ctx also bounds the wait for
// the keep-alive goroutine (an in-flight renew on a client without
// ContextTimeoutEnabled may hang until its ReadTimeout); it is told to stop
// either way.
func (s *Session) Close(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stop) })
	select {
	case <-s.exited:
	case <-ctx.Done():
		s.finish(ErrClosed)
		return fmt.Errorf("close session: wait for keep-alive: %w", ctx.Err())
	}
	s.mu.Lock()
	held := make([]*Lease, 0, len(s.leases)+len(s.unreleased))
	for _, l := range s.leases {
		held = append(held, l)
	}
	held = append(held, s.unreleased...)
	s.unreleased = nil
	s.mu.Unlock()
	s.finish(ErrClosed)
	var errs []error
	if err := s.releaseBatch(ctx, held); err != nil {
		errs = append(errs, err)
	}
	pipe := s.client.Pipeline() // one slot per partition: no MULTI across them
	for p := range s.keys.Partitions() {
		pipe.Del(ctx, s.keys.PartitionMember(p, s.cfg.WorkerID))
	}
	pipe.Del(ctx, s.memKey)
	pipe.ZRem(ctx, s.keys.Members(), s.cfg.WorkerID)
	pipe.ZRem(ctx, s.keys.MembersSince(), s.cfg.WorkerID)
	if _, err := pipe.Exec(ctx); err != nil {
		errs = append(errs, fmt.Errorf("delete member: %w", err))
	}
	return errors.Join(errs...)
}
