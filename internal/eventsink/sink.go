package eventsink

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/cache"
	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// Config configures a Sink. DefaultConfig holds the defaults; New validates.
type Config struct {
	// Prefix is the fleet's key prefix, normalised like internal/lease's (a
	// prefix without a {hash tag} is wrapped in one). Default "{shardfleet}:".
	Prefix string
	// Partitions is the fleet's partition count (internal/keyspace): each
	// shard's events go to its partition's stream. Default 1.
	Partitions int
	// MaxLen caps each stream approximately (XADD MAXLEN ~). 0: uncapped. Default 1,000,000.
	MaxLen int64
	// BatchSize is the most events per script call. Default 512.
	BatchSize int
	// MaxBatchBytes bounds the data (and cache changes) of one script call
	// (a batch holds at least one event whatever its size). Default 1 MiB.
	MaxBatchBytes int
	// FlushInterval is how long a Writer lets a small batch fill before it
	// commits it. 0: commit at once. Default 1 ms.
	FlushInterval time.Duration
	// MaxPending is how many events a Writer buffers before Add blocks. Default 16384.
	MaxPending int
	// MaxPendingBytes bounds the data (and cache changes) of the events a
	// Writer holds (added, not yet committed) before Add blocks: a count alone lets large events
	// pile up while Redis is slow. Default 4 MiB.
	MaxPendingBytes int
	// PendingBytes, when set, is also told every change of the bytes the
	// Writers hold (the worker's gateway.BacklogBudget), so one budget
	// covers what is queued for the handler and what waits for Redis.
	PendingBytes ByteCounter
	// Committed, when set, is given each batch of events a Writer committed,
	// after the script call that committed them returned: exactly the
	// events now in the stream under the Writer's fence, once each, in the
	// shard's seq order. It runs on the Writer's goroutine (one call at a
	// time per shard); the Writer commits nothing more until it returns.
	Committed func(shard Shard, events []Event)
	// RetryBackoffMin and RetryBackoffMax bound the wait between attempts after
	// a Redis error (doubling). Defaults 10 ms and 1 s.
	RetryBackoffMin, RetryBackoffMax time.Duration
	// Logger gets retries and rejections. Default slog.Default().
	Logger *slog.Logger
	// Cache is what the state cache keeps (cache.go). Default: nothing.
	Cache cache.Config
}

// DefaultConfig returns the defaults.
func DefaultConfig() *Config {
	return &Config{
		Prefix:          lease.DefaultPrefix,
		Partitions:      1,
		MaxLen:          1_000_000,
		BatchSize:       512,
		MaxBatchBytes:   1 << 20,
		FlushInterval:   time.Millisecond,
		MaxPending:      16384,
		MaxPendingBytes: 4 << 20,
		RetryBackoffMin: 10 * time.Millisecond,
		RetryBackoffMax: time.Second,
		Logger:          slog.Default(),
	}
}

// Option changes a Config.
type Option func(*Config)

// WithPrefix sets the key prefix.
func WithPrefix(prefix string) Option { return func(c *Config) { c.Prefix = prefix } }

// WithPartitions sets the fleet's partition count.
func WithPartitions(n int) Option { return func(c *Config) { c.Partitions = n } }

// WithMaxLen sets the approximate stream cap (0: uncapped).
func WithMaxLen(n int64) Option { return func(c *Config) { c.MaxLen = n } }

// WithBatch sets the batch size and how long a small batch may wait.
func WithBatch(size int, flushInterval time.Duration) Option {
	return func(c *Config) { c.BatchSize, c.FlushInterval = size, flushInterval }
}

// WithMaxPending sets the per-shard buffer bound.
func WithMaxPending(n int) Option { return func(c *Config) { c.MaxPending = n } }

// ByteCounter counts bytes held; delta is negative when they are released.
type ByteCounter interface{ Add(delta int64) }

// WithMaxPendingBytes sets the per-Writer bound on held bytes and the counter
// told of them (nil: none).
func WithMaxPendingBytes(n int, counter ByteCounter) Option {
	return func(c *Config) { c.MaxPendingBytes, c.PendingBytes = n, counter }
}

// WithCommitted sets the function told of every committed batch (see
// Config.Committed).
func WithCommitted(fn func(shard Shard, events []Event)) Option {
	return func(c *Config) { c.Committed = fn }
}

// WithRetryBackoff sets the bounds of the retry backoff.
func WithRetryBackoff(minDelay, maxDelay time.Duration) Option {
	return func(c *Config) { c.RetryBackoffMin, c.RetryBackoffMax = minDelay, maxDelay }
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(c *Config) { c.Logger = l } }

// Event is one dispatch as the gateway delivered it.
type Event struct {
	Type      string
	Seq       int
	SessionID string
	ResumeURL string // the session's resume_gateway_url, if known
	Data      json.RawMessage

	cache    []string // the state cache's changes (cache.go), once prepared
	prepared bool
}

// Stats are a Sink's counters since New.
type Stats struct {
	Committed   uint64 // events written to the stream
	Duplicates  uint64 // events skipped as already committed (replays, retries)
	Batches     uint64 // successful script calls
	RedisErrors uint64 // failed script calls (retried)
	Rejected    uint64 // batches refused as fenced, stale or rolled back
	LostRecords uint64 // session records Redis lost under a writer (data loss): started afresh
	CacheErrors uint64 // committed events whose cache changes failed (a corrupt cached value)
}

// Sink commits events to the fleet's stream. It is safe for concurrent use;
// it owns no goroutine (each Writer runs one while it has events to commit).
type Sink struct {
	client redis.UniversalClient
	cfg    Config
	keys   lease.Keys
	maxLen string

	committed, duplicates, batches, redisErrors, rejected, lostRecords, cacheErrors atomic.Uint64
}

// New validates the configuration and returns a Sink.
func New(client redis.UniversalClient, opts ...Option) (*Sink, error) {
	cfg := DefaultConfig()
	for _, o := range opts {
		o(cfg)
	}
	switch {
	case client == nil:
		return nil, gateway.NewConfigError("eventsink", "client", "is nil")
	case cfg.MaxLen < 0:
		return nil, gateway.NewConfigError("eventsink", "MaxLen", "is negative")
	case cfg.BatchSize < 1:
		return nil, gateway.NewConfigError("eventsink", "BatchSize", "is below 1")
	case cfg.MaxBatchBytes < 1:
		return nil, gateway.NewConfigError("eventsink", "MaxBatchBytes", "is below 1")
	case cfg.FlushInterval < 0:
		return nil, gateway.NewConfigError("eventsink", "FlushInterval", "is negative")
	case cfg.MaxPending < 1:
		return nil, gateway.NewConfigError("eventsink", "MaxPending", "is below 1")
	case cfg.MaxPendingBytes < 1:
		return nil, gateway.NewConfigError("eventsink", "MaxPendingBytes", "is below 1")
	case cfg.RetryBackoffMin <= 0 || cfg.RetryBackoffMax < cfg.RetryBackoffMin:
		return nil, gateway.NewConfigError("eventsink", "RetryBackoffMin", "want 0 < RetryBackoffMin <= RetryBackoffMax")
	case cfg.Logger == nil:
		return nil, gateway.NewConfigError("eventsink", "Logger", "is nil")
	}
	cfg.Prefix = lease.NormalizePrefix(cfg.Prefix)
	keys, err := lease.NewKeys(cfg.Prefix).WithPartitions(cfg.Partitions)
	if err != nil {
		return nil, gateway.NewConfigError("eventsink", "Partitions", err.Error())
	}
	return &Sink{client: client, cfg: *cfg, keys: keys, maxLen: strconv.FormatInt(cfg.MaxLen, 10)}, nil
}

// Keys returns the key layout the sink uses.
func (s *Sink) Keys() lease.Keys { return s.keys }

// Stats returns the counters.
func (s *Sink) Stats() Stats {
	return Stats{Committed: s.committed.Load(), Duplicates: s.duplicates.Load(), Batches: s.batches.Load(),
		RedisErrors: s.redisErrors.Load(), Rejected: s.rejected.Load(), LostRecords: s.lostRecords.Load(),
		CacheErrors: s.cacheErrors.Load()}
}

// Result is what one Commit did.
type Result struct {
	Committed int // events written
	LastSeq   int // the record's seq after the call: the resume point
}

// Commit writes batch (events of one session, in seq order) in one script call.
// It returns an error wrapping ErrFenced or ErrStaleSession when the writes are
// refused; other errors are Redis errors, and calling again is safe.
func (s *Sink) Commit(ctx context.Context, shard Shard, fence Fence, batch []Event) (Result, error) {
	return s.commit(ctx, shard, fence, 0, batch)
}

// commit is Commit for a writer that knows the record of the batch's session
// reached expect (0: knows nothing): a record behind it is a *RollbackError.
func (s *Sink) commit(ctx context.Context, shard Shard, fence Fence, expect int, batch []Event) (Result, error) {
	if len(batch) == 0 {
		return Result{}, nil
	}
	session, resumeURL := batch[0].SessionID, ""
	args := make([]any, 0, 11+4*len(batch))
	for _, ev := range batch {
		if ev.SessionID != session {
			return Result{}, fmt.Errorf("commit shard %d: %w", shard.ID, ErrMixedSessions)
		}
		if ev.ResumeURL != "" {
			resumeURL = ev.ResumeURL
		}
	}
	args = append(args, fence.WorkerID, strconv.FormatUint(fence.Token, 10), shard.ID, shard.Count,
		session, resumeURL, s.maxLen, len(batch), expect, s.keys.CacheGuildPrefix(shard), s.keys.CacheShardGuilds(shard))
	for _, ev := range batch {
		args = s.appendEvent(args, ev)
	}
	keys := []string{s.keys.Lease(shard), s.keys.ShardMember(shard, fence.WorkerID), s.keys.Session(shard),
		s.keys.ShardEvents(shard)}
	res, err := commitScript.Run(ctx, s.client, keys, args...).Int64Slice()
	if err != nil {
		if durable, ok := rollback(err); ok {
			s.rejected.Add(1)
			return Result{}, &RollbackError{Shard: shard, Session: session, ResumeURL: resumeURL,
				Durable: durable, Expected: expect}
		}
		if rejected := classify(err); rejected == errLostRecord {
			s.lostRecords.Add(1)
			return Result{}, fmt.Errorf("commit shard %d: %w", shard.ID, rejected)
		} else if rejected != nil {
			s.rejected.Add(1)
			return Result{}, fmt.Errorf("commit shard %d: %w", shard.ID, rejected)
		}
		s.redisErrors.Add(1)
		return Result{}, fmt.Errorf("commit shard %d: %w", shard.ID, err)
	}
	if len(res) != 3 {
		s.redisErrors.Add(1)
		return Result{}, fmt.Errorf("commit shard %d: unexpected script reply %v", shard.ID, res)
	}
	s.batches.Add(1)
	s.committed.Add(uint64(res[0]))
	s.duplicates.Add(uint64(len(batch)) - uint64(res[0]))
	s.cacheErrors.Add(uint64(res[2]))
	return Result{Committed: int(res[0]), LastSeq: int(res[1])}, nil
}

// classify maps the script's refusals to sentinels; nil for other errors.
func classify(err error) error {
	r, _ := keyspace.ParseRefusal(err)
	switch r.Code {
	case "FENCED":
		return ErrFenced
	case "STALESESSION":
		return ErrStaleSession
	case "LOSTRECORD":
		return errLostRecord
	}
	return nil
}

// rollback reads the durable seq from the script's ROLLBACK refusal.
func rollback(err error) (durable int, ok bool) {
	r, ok := keyspace.ParseRefusal(err)
	if !ok || r.Code != "ROLLBACK" {
		return 0, false
	}
	_, seq, ok := strings.Cut(r.Detail, " durable seq ")
	if !ok {
		return 0, false
	}
	durable, err = strconv.Atoi(seq)
	return durable, err == nil
}

// SessionRecord is a shard's session record: the session to RESUME, its
// resume URL and the last committed seq (the resume point).
type SessionRecord = keyspace.SessionRecord

// Session reads the shard's session record; the zero record when there is
// none. A corrupt record is an error wrapping keyspace.ErrCorrupt.
func (s *Sink) Session(ctx context.Context, shard Shard) (SessionRecord, error) {
	vals, err := s.client.HMGet(ctx, s.keys.Session(shard), keyspace.SessionFields...).Result()
	if err != nil {
		return SessionRecord{}, fmt.Errorf("read session of shard %d: %w", shard.ID, err)
	}
	rec, err := keyspace.ParseSession(vals)
	if err != nil {
		return SessionRecord{}, fmt.Errorf("read session of shard %d: %w", shard.ID, err)
	}
	return rec, nil
}
