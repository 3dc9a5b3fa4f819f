package worker

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Wait is one reason why a worker runs fewer shards than it should, for
// /status and `worker status`.
type Wait struct {
	Reason string `json:"reason"`
	Shards int    `json:"shards,omitempty"`  // how many shards wait for it (0: not known)
	LeftMS int64  `json:"left_ms,omitempty"` // time left, when known
}

// identifyQueue counts the shards waiting for an IDENTIFY permit and logs
// when the worker starts and stops waiting (one line each, not one per
// shard: a fleet start queues thousands).
type identifyQueue struct {
	log *slog.Logger

	mu    sync.Mutex
	n     int
	since time.Time
}

const pacingReason = "identify pacing: waiting for the fleet's IDENTIFY permits (max_concurrency per window)"

func (q *identifyQueue) enter() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		q.since = time.Now()
		q.log.Info("waiting", "reason", pacingReason)
	}
	q.n++
}

func (q *identifyQueue) leave() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.n--
	if q.n == 0 {
		q.log.Info("wait over", "reason", pacingReason, "waited", time.Since(q.since))
	}
}

// waiting is the queue as a Wait, or false when nothing waits.
func (q *identifyQueue) waiting() (Wait, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return Wait{Reason: pacingReason, Shards: q.n}, q.n > 0
}

// waits lists what this worker waits for now (see Status.Waiting).
func (w *Worker) waits(shards []ShardStatus) []Wait {
	var out []Wait
	if s := w.session.Load(); s != nil {
		if lw := s.Waiting(); !lw.Settled || lw.Pending > 0 {
			wt := Wait{Reason: lw.Reason, Shards: lw.Pending}
			if !lw.Until.IsZero() {
				wt.LeftMS = max(time.Until(lw.Until).Milliseconds(), 0)
			}
			out = append(out, wt)
		}
	}
	if left := time.Until(time.Unix(0, w.quietUntil.Load())); left > 0 {
		out = append(out, Wait{Reason: "identify quiet period: Redis lost the limiter's state", LeftMS: left.Milliseconds()})
	}
	if wt, ok := w.queue.waiting(); ok {
		out = append(out, wt)
	}
	floor := 0
	for _, s := range shards {
		if s.Status == "budget_floor" {
			floor++
		}
	}
	if floor > 0 {
		out = append(out, Wait{Reason: "identify budget at its reserve floor until Discord resets it", Shards: floor})
	}
	return out
}

// sampleQuiet records when the limiter's quiet period ends, for waits.
func (w *Worker) sampleQuiet(ctx context.Context) {
	if left, err := w.limiter.QuietLeft(ctx); err == nil {
		w.quietUntil.Store(time.Now().Add(left).UnixNano())
	}
}
