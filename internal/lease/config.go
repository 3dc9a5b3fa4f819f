package lease

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/shardfleet/shardfleet/internal/keyspace"
)

// Config configures a Session. Start from DefaultConfig (Discord-safe
// timings) or LocalConfig (compressed timings for tests); NewSession applies
// defaults to zero fields of a copy and validates the result once.
type Config struct {
	// Prefix of every key of the fleet. Default DefaultPrefix
	// ("{shardfleet}:"); a prefix without a {hash tag} is wrapped in one.
	Prefix string
	// Partitions is the fleet's partition count P (see internal/keyspace):
	// 0 follows the count the fleet stored, or NewFleetPartitions for a new
	// fleet (16 on Redis Cluster, 1 on one node or Sentinel; 1 for a fleet
	// from before partitions). A count that
	// disagrees with the stored one is a *ConfigError: P never changes.
	Partitions int
	// WorkerID names this member. Default: a fresh random UUID per session,
	// which is what you want: a restarted process is a new member, so it never
	// inherits leases of its previous life by accident.
	WorkerID string
	// Info is stored (as JSON) in the member key, for operators and tools.
	Info MemberInfo

	// TTL of the member key, hence of every lease of the session. Default 15 s.
	TTL time.Duration
	// RenewInterval between keep-alive round trips. Default 2 s.
	RenewInterval time.Duration
	// RenewDeadline: when no renew has succeeded within RenewDeadline of the
	// moment the last successful one was sent, the session self-fences.
	// Default 10 s. Must satisfy TTL > RenewDeadline > 1.2 x RenewInterval,
	// and TTL > RenewDeadline / (1 - MaxClockDrift).
	RenewDeadline time.Duration
	// MaxClockDrift is the rate error of the local monotonic clock, against
	// the Redis server's, that the timings must tolerate: a fraction d in
	// [0, 1). The deadline is measured locally and the TTL on Redis, so a local
	// clock running slow by d stretches RenewDeadline to RenewDeadline/(1-d)
	// of real time; the holder still fences before Redis expires its member
	// key iff TTL > RenewDeadline/(1-d). The clock's offset does not matter:
	// the session only measures durations on it.
	//
	// Default 0.1 (zero means the default). Quartz and NTP slewing are off by
	// well under 0.001; 0.1 leaves room for hosts whose clock misbehaves
	// (overcommitted VMs, broken TSC) and for the fence timer firing late
	// under load, and accepts the usual 2/3 deadline-to-TTL ratio (15 s / 10 s
	// tolerates up to 1/3). It bounds rate, not pauses: a process paused past
	// the TTL is not covered (the fencing token is).
	MaxClockDrift float64

	// TickInterval between reconcile passes of Run. Default 1 s.
	TickInterval time.Duration
	// TickJitter: each tick waits TickInterval plus a random duration in
	// [0, TickJitter), so workers do not act in lockstep. Default 250 ms.
	TickJitter time.Duration
	// MovesPerTick caps the planned moves (revocations of shards this worker
	// holds but should not) per tick. Claims of free shards are not capped.
	// Default 4.
	MovesPerTick int
	// JoinGrace: a member counts for assignment only after it has been a
	// member for JoinGrace, so a flapping member does not churn the fleet.
	// Default 5 s.
	JoinGrace time.Duration
	// DataLossGrace: after a holder proved that Redis lost its data (its
	// renew found another epoch and it re-asserted), nobody claims a shard it
	// did not hold for this long. Must be >= TTL. Default TTL + RenewDeadline
	// (25 s).
	DataLossGrace time.Duration
	// DataLossProbe: a session that finds no epoch (a new Redis, or one that
	// lost its data) creates it and claims nothing for this long. Every live
	// holder of a lost Redis renews within RenewInterval, finds the new epoch
	// and re-asserts, which starts DataLossGrace; when nobody does, the fleet
	// is new and starts at once. A holder that cannot reach Redis during the
	// probe self-fences within RenewDeadline of its last renew. Must exceed
	// RenewInterval (the margin covers the renew's round trip) and not exceed
	// DataLossGrace. Default RenewInterval + max(RenewInterval/8, 100ms)
	// (2.25 s), derived from the RenewInterval in force when zero.
	DataLossProbe time.Duration
	// RevokeTimeout bounds a Handler.Revoke call. Default 10 s.
	RevokeTimeout time.Duration

	// Logger receives the session's logs, with worker_id attached.
	// Default slog.Default().
	Logger *slog.Logger
}

// MemberInfo is the member key's value. ID and StartedAt are filled in by
// NewSession.
type MemberInfo struct {
	ID        string    `json:"id"`
	Host      string    `json:"host,omitempty"`
	HTTPAddr  string    `json:"http_addr,omitempty"`
	StartedAt time.Time `json:"started_at"`
}

// DefaultConfig returns the production defaults (Discord-safe; client-go's
// leader election uses the same 15 s / 10 s / 2 s).
func DefaultConfig() Config {
	return Config{
		Prefix:        DefaultPrefix,
		TTL:           15 * time.Second,
		RenewInterval: 2 * time.Second,
		RenewDeadline: 10 * time.Second,
		MaxClockDrift: 0.1,
		TickInterval:  time.Second,
		TickJitter:    250 * time.Millisecond,
		MovesPerTick:  4,
		JoinGrace:     5 * time.Second,
		DataLossGrace: 25 * time.Second,
		RevokeTimeout: 10 * time.Second,
	}
}

// LocalConfig returns compressed timings (tens to hundreds of ms) for tests
// on one machine, with the same ratios as DefaultConfig.
func LocalConfig() Config {
	c := DefaultConfig()
	c.TTL = 600 * time.Millisecond
	c.RenewInterval = 80 * time.Millisecond
	c.RenewDeadline = 400 * time.Millisecond
	c.TickInterval = 40 * time.Millisecond
	c.TickJitter = 10 * time.Millisecond
	c.MovesPerTick = 8
	c.JoinGrace = 150 * time.Millisecond
	c.DataLossGrace = c.TTL + c.RenewDeadline
	c.RevokeTimeout = time.Second
	return c
}

// withDefaults fills zero fields from DefaultConfig. Only Prefix, WorkerID,
// Logger, MaxClockDrift and zero durations/counts are filled; DataLossGrace
// defaults to TTL + RenewDeadline and DataLossProbe to RenewInterval +
// max(RenewInterval/8, 100ms) of the resulting config.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Prefix == "" {
		c.Prefix = d.Prefix
	}
	c.Prefix = NormalizePrefix(c.Prefix)
	if c.WorkerID == "" {
		c.WorkerID = uuid.NewString()
	}
	setDur(&c.TTL, d.TTL)
	setDur(&c.RenewInterval, d.RenewInterval)
	setDur(&c.RenewDeadline, d.RenewDeadline)
	setDur(&c.TickInterval, d.TickInterval)
	setDur(&c.RevokeTimeout, d.RevokeTimeout)
	if c.MaxClockDrift == 0 {
		c.MaxClockDrift = d.MaxClockDrift
	}
	if c.MovesPerTick == 0 {
		c.MovesPerTick = d.MovesPerTick
	}
	if c.DataLossGrace == 0 {
		c.DataLossGrace = c.TTL + c.RenewDeadline
	}
	if c.DataLossProbe == 0 {
		c.DataLossProbe = c.RenewInterval + max(c.RenewInterval/8, 100*time.Millisecond)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func setDur(p *time.Duration, def time.Duration) {
	if *p == 0 {
		*p = def
	}
}

// validate checks a config with defaults applied. The error wraps
// ErrInvalidConfig and names the field.
func (c Config) validate() error {
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Package: "lease", Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case strings.ContainsAny(c.WorkerID, " \t\r\n{}") || len(c.WorkerID) > 128:
		return bad("WorkerID", "%q: no whitespace or braces, at most 128 bytes", c.WorkerID)
	case c.Partitions < 0 || c.Partitions > keyspace.MaxPartitions:
		return bad("Partitions", "%d not in [1, %d] (0: the fleet's stored count)", c.Partitions, keyspace.MaxPartitions)
	case c.RenewInterval < time.Millisecond:
		return bad("RenewInterval", "%v is below 1ms", c.RenewInterval)
	case c.TTL%time.Millisecond != 0 || c.TTL <= 0:
		return bad("TTL", "%v must be a positive whole number of milliseconds", c.TTL)
	case c.TTL <= c.RenewDeadline:
		return bad("TTL", "%v must exceed RenewDeadline %v", c.TTL, c.RenewDeadline)
	case !(c.MaxClockDrift >= 0 && c.MaxClockDrift < 1): // NaN too
		return bad("MaxClockDrift", "%v must be in [0, 1)", c.MaxClockDrift)
	case !fencesBeforeExpiry(c.TTL, c.RenewDeadline, c.MaxClockDrift):
		return bad("TTL", "%v must exceed RenewDeadline/(1-MaxClockDrift) = %v/(1-%v) = %v: a holder whose clock runs %v%% slow would fence after Redis expired its lease",
			c.TTL, c.RenewDeadline, c.MaxClockDrift, stretched(c.RenewDeadline, c.MaxClockDrift), 100*c.MaxClockDrift)
	case float64(c.RenewDeadline) <= 1.2*float64(c.RenewInterval):
		return bad("RenewDeadline", "%v must exceed 1.2 x RenewInterval %v", c.RenewDeadline, c.RenewInterval)
	case c.TickInterval < 0:
		return bad("TickInterval", "%v is negative", c.TickInterval)
	case c.TickJitter < 0:
		return bad("TickJitter", "%v is negative", c.TickJitter)
	case c.MovesPerTick < 1:
		return bad("MovesPerTick", "%d is below 1", c.MovesPerTick)
	case c.JoinGrace < 0:
		return bad("JoinGrace", "%v is negative", c.JoinGrace)
	case c.DataLossGrace < c.TTL:
		return bad("DataLossGrace", "%v is below TTL %v", c.DataLossGrace, c.TTL)
	case c.DataLossProbe <= c.RenewInterval || c.DataLossProbe > c.DataLossGrace:
		return bad("DataLossProbe", "%v must exceed RenewInterval %v and not exceed DataLossGrace %v",
			c.DataLossProbe, c.RenewInterval, c.DataLossGrace)
	case c.RevokeTimeout < 0:
		return bad("RevokeTimeout", "%v is negative", c.RevokeTimeout)
	}
	return nil
}

// fencesBeforeExpiry reports whether a holder whose local clock runs slow by
// the rate error drift still self-fences, RenewDeadline after sending its
// last successful renew, before Redis (which ran that renew no earlier)
// expires it ttl later: ttl > deadline/(1-drift).
func fencesBeforeExpiry(ttl, deadline time.Duration, drift float64) bool {
	return float64(ttl)*(1-drift) > float64(deadline)
}

// stretched is deadline on a clock slow by drift, in real time.
func stretched(deadline time.Duration, drift float64) time.Duration {
	return time.Duration(float64(deadline) / (1 - drift))
}
