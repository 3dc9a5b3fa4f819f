package member

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardfleet/shardfleet/internal/worker"
)

// Member is a fleet member running in this process. Create it with New,
// then call Run once; the other methods are safe from any goroutine at any
// time.
type Member struct {
	w *worker.Worker
}

// Status is a member's state, as published in Redis for `worker status`
// and served on cmd/worker's /status.
type Status = worker.Status

// New validates cfg and returns a Member.
func New(cfg Config) (*Member, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	w, err := worker.New(cfg.worker())
	if err != nil {
		return nil, err
	}
	return &Member{w: w}, nil
}

// Run joins the fleet and runs the shards this member wins until ctx ends;
// then it hands every shard off (session saved, lease released, so another
// member RESUMEs it) within ShutdownTimeout and leaves. It returns nil after
// a stop ctx asked for, and an error when the member cannot run (Redis
// unreachable at the start, its session closed under it...). A rejected
// token (4004, or 401 from GET /gateway/bot) opens nothing more, and Run
// stays up until ctx ends: see FatalError.
func (m *Member) Run(ctx context.Context) error { return m.w.Run(ctx) }

// Status is the member's state now.
func (m *Member) Status() Status { return m.w.Status() }

// Ready reports whether every shard this member should run is READY.
func (m *Member) Ready() bool { return m.w.Ready() }

// FatalError is the token-wide fatal error (the token was rejected), or nil.
func (m *Member) FatalError() error { return m.w.FatalError() }

// Registry holds the member's Prometheus metrics (shardfleet_*), for a
// /metrics handler.
func (m *Member) Registry() *prometheus.Registry { return m.w.Registry() }

// Gatherer gathers the member's series, as Registry holds them, with far
// less garbage per scrape for many shards: serve it (promhttp.HandlerFor, or
// prometheus.Gatherers beside a registry of your own) rather than Registry.
// Collectors registered into Registry are not in it.
func (m *Member) Gatherer() prometheus.Gatherer { return m.w.Gatherer() }
