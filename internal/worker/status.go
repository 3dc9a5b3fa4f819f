package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// ShardStatus is one shard as its worker sees it.
type ShardStatus struct {
	ID    int `json:"shard_id"`
	Count int `json:"shard_count"`
	// Status is the gateway status ("ready", "resuming"...), "opening",
	// "budget_floor" (stopped at the identify budget's reserve floor until it
	// resets; Error says why and when it is checked next) or "fatal" (stopped
	// by a fatal close until the worker is restarted).
	Status     string  `json:"status"`
	LatencyMS  float64 `json:"latency_ms"`
	LeaseToken uint64  `json:"lease_token,omitempty,string"`
	Error      string  `json:"error,omitempty"`
}

// Status is one worker's state, published in Redis for `worker status` and
// served on /status.
type Status struct {
	WorkerID       string        `json:"worker_id"`
	Mode           string        `json:"mode"` // "local" or "fleet"
	Host           string        `json:"host,omitempty"`
	HTTPAddr       string        `json:"http_addr,omitempty"`
	StartedAt      time.Time     `json:"started_at"`
	UpdatedAt      time.Time     `json:"updated_at"`
	Ready          bool          `json:"ready"`
	Error          string        `json:"error,omitempty"`
	EventsReceived uint64        `json:"events_received"`
	Shards         []ShardStatus `json:"shards"`
	// Waiting lists why the worker runs fewer shards than it should (data-loss
	// grace, limiter quiet period, IDENTIFY pacing, budget floor), with the
	// shards concerned and the time left when known. Empty when it waits for
	// nothing.
	Waiting []Wait `json:"waiting,omitempty"`
	// LeaseExpiresInMS is filled in by ReadFleet: the member key's PTTL, which
	// is when every lease of the worker expires unless renewed (-1: gone).
	LeaseExpiresInMS int64 `json:"lease_expires_in_ms,omitempty"`
	// Stale is set by ReadFleet when the worker's liveness lapsed (its member
	// key expired: killed, frozen or cut off from Redis): its Shards are what
	// it last published at UpdatedAt, not what runs now.
	Stale bool `json:"stale,omitempty"`
}

// shardStatuses lists the shards this worker runs, sorted, in into's array
// when it is large enough (nil: a new one).
func (w *Worker) shardStatuses(into []ShardStatus) []ShardStatus {
	if !w.mgrSet.Load() {
		return nil
	}
	out := into[:0]
	if w.cfg.Redis == nil {
		for id, g := range w.mgr.Shards() {
			out = append(out, gatewayStatus(id, g))
		}
	} else {
		w.mu.RLock()
		for key, run := range w.shards {
			s := ShardStatus{ID: key.ID, Count: key.Count, Status: "opening", LeaseToken: run.lease.Token()}
			if g := w.mgr.Shard(key.ID); g != nil && g.ShardCount() == key.Count {
				s = gatewayStatus(key.ID, g)
				s.LeaseToken = run.lease.Token()
			}
			if run.floor != nil {
				s.Status, s.Error = "budget_floor", run.floor.Error()
				if run.floorStopped {
					s.Error += "; reopens once the budget resets, next check at " +
						run.floorCheckAt.UTC().Format(time.RFC3339)
				}
			}
			if run.fatal != nil {
				s.Status, s.Error = "fatal", run.fatal.Error()
			}
			out = append(out, s)
		}
		w.mu.RUnlock()
	}
	slices.SortFunc(out, func(a, b ShardStatus) int {
		if a.Count != b.Count {
			return a.Count - b.Count
		}
		return a.ID - b.ID
	})
	return out
}

func gatewayStatus(id int, g gateway.Gateway) ShardStatus {
	s := ShardStatus{ID: id, Count: g.ShardCount(), Status: g.Status().String(),
		LatencyMS: float64(g.Latency().Microseconds()) / 1000}
	return s
}

// Status returns this worker's state now.
func (w *Worker) Status() Status { return w.status(nil) }

// status is Status with its Shards in shards' array when large enough.
func (w *Worker) status(shards []ShardStatus) Status {
	st := Status{WorkerID: w.cfg.WorkerID, Mode: "local", Host: w.cfg.Info.Host, HTTPAddr: w.cfg.Info.HTTPAddr,
		StartedAt: w.started, UpdatedAt: time.Now(), EventsReceived: w.events.Load(), Shards: w.shardStatuses(shards)}
	if w.cfg.Redis != nil {
		st.Mode = "fleet"
	}
	st.Ready = w.ready(st.Shards)
	st.Waiting = w.waits(st.Shards)
	w.mu.RLock()
	if err := errors.Join(w.fatalErr, w.runErr); err != nil {
		st.Error = err.Error()
	}
	w.mu.RUnlock()
	return st
}

// Ready reports whether every shard this worker runs is READY and, in fleet
// mode, its lease session is alive and holds every shard assigned to it.
func (w *Worker) Ready() bool { return w.ready(w.shardStatuses(nil)) }

func (w *Worker) ready(shards []ShardStatus) bool {
	if !w.mgrSet.Load() || w.FatalError() != nil {
		return false
	}
	if w.cfg.Redis != nil {
		session := w.session.Load()
		if session == nil {
			return false
		}
		select {
		case <-session.Done():
			return false
		default:
		}
		if lw := session.Waiting(); !lw.Settled || lw.Pending > 0 {
			return false // shards assigned to this worker are not running
		}
	} else if len(shards) == 0 {
		return false
	}
	for _, s := range shards {
		if s.Status != gateway.StatusReady.String() {
			return false
		}
	}
	return true
}

// statusKey is where a worker publishes its Status: P+"status:"+workerID, a
// STRING of JSON that expires unless refreshed.
func statusKey(keys lease.Keys, workerID string) string { return keys.Status(workerID) }

// statusPublisher holds what statusLoop reuses from one publication to the
// next. A publication lists every shard, and its JSON; made anew every
// StatusInterval (2 s), they were about three quarters of an idle worker's
// garbage, which took its heap up to the GC's goal between collections
// (docs/benchmarks.md, issue 16 fifth round). It keeps the largest
// publication's arrays, a few hundred bytes per shard.
type statusPublisher struct {
	shards []ShardStatus
	body   bytes.Buffer
	enc    *json.Encoder
}

// encode returns the JSON of w's status, valid until the next call.
func (p *statusPublisher) encode(w *Worker) []byte {
	if p.enc == nil {
		p.enc = json.NewEncoder(&p.body)
	}
	st := w.status(p.shards)
	p.shards = st.Shards
	p.body.Reset()
	_ = p.enc.Encode(st) // a Status always encodes
	return bytes.TrimSuffix(p.body.Bytes(), []byte("\n"))
}

// statusLoop publishes the status and samples the identify budget every
// StatusInterval until ctx ends.
func (w *Worker) statusLoop(ctx context.Context) {
	keys := lease.NewKeys(w.cfg.KeyPrefix)
	ttl := 3 * w.session.Load().Config().TTL
	t := time.NewTicker(w.cfg.StatusInterval)
	defer t.Stop()
	var pub statusPublisher
	for {
		body := pub.encode(w)
		callCtx, cancel := context.WithTimeout(ctx, w.cfg.StatusInterval)
		if err := w.cfg.Redis.Set(callCtx, statusKey(keys, w.cfg.WorkerID), body, ttl).Err(); err != nil && ctx.Err() == nil {
			w.m.redisErrors.Add(1)
		}
		if err := w.publishCacheKinds(callCtx); err != nil && ctx.Err() == nil {
			w.m.redisErrors.Add(1)
		}
		if b, ok, err := w.limiter.Budget(callCtx); err == nil && ok {
			w.m.budget.Set(float64(b.Remaining))
		}
		w.sampleQuiet(callCtx)
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// deleteStatus removes the published status after a clean stop.
func (w *Worker) deleteStatus() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = w.cfg.Redis.Del(ctx, statusKey(lease.NewKeys(w.cfg.KeyPrefix), w.cfg.WorkerID)).Err()
}

// ReadFleet reads every worker's published status from Redis, with the
// expiry of its leases. Workers are those in the fleet's member index plus
// any with a live status key.
func ReadFleet(ctx context.Context, client redis.UniversalClient, prefix string) ([]Status, error) {
	keys := lease.NewKeys(prefix)
	ids, err := client.ZRange(ctx, keys.Members(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("read members: %w", err)
	}
	out := make([]Status, 0, len(ids))
	for _, id := range ids {
		st := Status{WorkerID: id}
		body, err := client.Get(ctx, statusKey(keys, id)).Bytes()
		switch {
		case errors.Is(err, redis.Nil):
			st.Error = "no status published"
		case err != nil:
			return nil, fmt.Errorf("read status of %s: %w", id, err)
		default:
			if err := json.Unmarshal(body, &st); err != nil {
				st.Error = "unreadable status: " + err.Error()
			}
		}
		pttl, err := client.PTTL(ctx, keys.Member(id)).Result()
		if err != nil {
			return nil, fmt.Errorf("read membership of %s: %w", id, err)
		}
		st.LeaseExpiresInMS, st.Stale = -1, true
		if pttl > 0 {
			st.LeaseExpiresInMS, st.Stale = pttl.Milliseconds(), false
		}
		out = append(out, st)
	}
	return out, nil
}
