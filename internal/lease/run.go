package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// Handler is how Run drives a worker's shards. Run calls it from its own
// goroutine, one call at a time.
//
// Lost leases are not reported through the Handler: the worker must stop a
// shard as soon as its lease's Done closes (lease lost, session self-fenced
// or ended), whoever closed it.
type Handler interface {
	// Acquired: the session now holds l. Start the shard, resuming state when
	// state.Resumable() (it is what the previous owner saved). Return
	// promptly: start the shard in the background. ctx is l.Context().
	Acquired(ctx context.Context, l *Lease, state gateway.ShardState)
	// Revoke: the shard must move (planned move, layout change or Drain).
	// Stop it, keeping its Discord session resumable (a close code other than
	// 1000/1001; gateway.Handoff does it), and return the state to hand over
	// (the zero value when there is none). Run saves it under l's token, then
	// releases l. On error Run keeps the lease and tries again on a later
	// tick. ctx is bounded by Config.RevokeTimeout.
	Revoke(ctx context.Context, l *Lease) (gateway.ShardState, error)
}

// Run reconciles what this worker holds with what Assign says it should hold,
// every TickInterval (plus jitter) and after every renew, until ctx ends (it
// returns ctx's error and keeps the leases: call Drain, then Close) or the
// session ends (it returns Session.Err). Each tick it
//
//   - revokes (through h.Revoke) every held lease whose shard left the layout,
//   - revokes at most MovesPerTick held leases assigned to another member
//     (planned moves: revoke, save, release; the new owner claims on its own
//     tick, so there are never two owners),
//   - claims, in one round trip, the free shards assigned to it, and calls
//     h.Acquired for each.
//
// Members count for assignment once they have been members for JoinGrace
// (this worker counts itself at once), or at once when they joined during a
// data-loss wait (the probe of a new fleet) that just ended. At steady state a tick makes no Redis
// call beyond reading the layout when its version changed. Run must not be
// called twice at once on one session.
func (s *Session) Run(ctx context.Context, h Handler) error {
	r := &reconciler{s: s, h: h}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return s.Err()
		case <-timer.C:
		case <-s.viewCh:
		}
		r.tick(ctx)
		timer.Reset(r.untilNextTick())
	}
}

// untilNextTick is the usual jittered tick, or less when the data-loss grace
// ends sooner: a new fleet claims as soon as its probe is over.
func (r *reconciler) untilNextTick() time.Duration {
	d := r.s.jittered()
	if left := r.s.clock.Until(r.graceUntil); left > 0 && left < d {
		return left
	}
	return d
}

func (s *Session) jittered() time.Duration {
	d := s.cfg.TickInterval
	if s.cfg.TickJitter > 0 {
		d += rand.N(s.cfg.TickJitter)
	}
	return d
}

// Drain revokes every lease the session holds (through h.Revoke), saving
// each shard's state for its next owner and releasing it, so a graceful
// shutdown hands shards over without waiting for the TTL. Call Close after.
func (s *Session) Drain(ctx context.Context, h Handler) error {
	r := &reconciler{s: s, h: h}
	var errs []error
	for _, l := range sortedLeases(s.Leases()) {
		if err := r.revoke(ctx, l, true); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// reconciler is Run's state; only Run's goroutine touches it.
type reconciler struct {
	s          *Session
	h          Handler
	layout     Layout
	shards     []ShardKey
	assignKey  string // layout version + eligible members of the cached assignment
	assignment map[ShardKey]string
	graceUntil time.Time // on s.clock: no claims before
	graceFrom  time.Time // on s.clock: when the current grace wait began
	// joinedBy (server time): members that joined by then count for
	// assignment at once. Set when a data-loss wait (a new fleet's probe)
	// ends: nothing was claimed during it, so there is no churn to damp, and
	// a fleet whose workers all started together splits its shards at once
	// instead of each worker claiming them all and moving them later.
	joinedBy time.Time
	noLayout bool // logged once
}

func (r *reconciler) tick(ctx context.Context) {
	v := r.s.view.Load()
	if v == nil {
		return
	}
	r.s.retryReleases(ctx)
	if !r.refreshLayout(ctx, v.layoutVersion) {
		return
	}
	me := r.s.cfg.WorkerID
	if !r.graceUntil.IsZero() && r.joinedBy.IsZero() && !r.s.clock.Now().Before(r.graceUntil) {
		r.joinedBy = v.now
	}
	assignment := r.assign(v)
	held := sortedLeases(r.s.Leases())
	moves := 0
	for _, l := range held {
		owner, inLayout := assignment[l.key]
		switch {
		case !inLayout:
			r.logRevoke(l, "not in layout", "")
			r.revokeInTick(ctx, l, false)
		case owner != me && moves < r.s.cfg.MovesPerTick:
			moves++
			r.logRevoke(l, "assigned elsewhere", owner)
			r.revokeInTick(ctx, l, true)
		}
	}
	var want []ShardKey
	for _, k := range r.shards {
		if assignment[k] == me && r.s.Lease(k) == nil {
			want = append(want, k)
		}
	}
	if !r.s.clock.Now().Before(r.graceUntil) {
		r.claim(ctx, want)
	}
	r.noteWait(want)
}

// noteWait publishes how many of want are still not held after the tick, and
// why; it logs when a data-loss grace wait ends.
func (r *reconciler) noteWait(want []ShardKey) {
	w := Wait{Settled: true}
	for _, k := range want {
		if r.s.Lease(k) == nil {
			w.Pending++
		}
	}
	if now := r.s.clock.Now(); now.Before(r.graceUntil) {
		w.Reason, w.Until = GraceReason, time.Now().Add(r.graceUntil.Sub(now))
	} else if w.Pending > 0 {
		w.Reason = "held by other workers until they hand over or their leases expire"
	}
	if prev := r.s.wait.Swap(&w); prev != nil && prev.Reason == GraceReason && w.Reason != GraceReason {
		r.s.log.Info("lease: wait over; claiming", slog.String("reason", GraceReason),
			slog.Duration("waited", r.s.clock.Since(r.graceFrom)))
	}
}

// GraceReason is the Wait.Reason of the data-loss probe and grace.
const GraceReason = "data-loss grace: waiting for holders of a lost Redis to re-assert"

// refreshLayout reloads the layout when the renew saw a new version. It
// reports whether a layout is known.
func (r *reconciler) refreshLayout(ctx context.Context, version int64) bool {
	if version == r.layout.Version && r.layout.Count > 0 {
		return true
	}
	l, err := r.s.LoadLayout(ctx)
	switch {
	case errors.Is(err, ErrNoLayout):
		if !r.noLayout {
			r.s.log.Info("lease: no fleet layout yet; waiting for SetLayoutIfAbsent")
			r.noLayout = true
		}
		return false
	case err != nil:
		r.s.log.Warn("lease: load layout", slog.Any("error", err))
		return r.layout.Count > 0
	}
	r.noLayout = false
	r.layout, r.shards = l, l.Shards()
	r.sweep(ctx)
	return true
}

// sweep deletes leases of the layout that name this worker but that this
// session does not hold: an earlier process with the same WorkerID left them,
// and this session's member key makes them look valid, so nobody else could
// claim them. It runs when the layout changes (at start too): O(shards) once.
//
// It holds claimMu, as claims do: a Claim from another goroutine between the
// snapshot of the held tokens and the script would otherwise have its fresh
// lease deleted in Redis while the session still holds it.
func (r *reconciler) sweep(ctx context.Context) {
	r.s.claimMu.Lock()
	defer r.s.claimMu.Unlock()
	const batch = 512
	byPart := make(map[int][]ShardKey)
	for _, k := range r.shards {
		p := r.s.keys.PartitionOf(k)
		byPart[p] = append(byPart[p], k)
	}
	for _, p := range slices.Sorted(maps.Keys(byPart)) {
		if !r.sweepBatches(ctx, byPart[p], batch) {
			return
		}
	}
}

// sweepBatches runs the sweep over shards (of one partition: one slot), batch
// by batch; false after a Redis error (logged).
func (r *reconciler) sweepBatches(ctx context.Context, shards []ShardKey, batch int) bool {
	for i := 0; i < len(shards); i += batch {
		part := shards[i:min(i+batch, len(shards))]
		keys := make([]string, len(part))
		for j, k := range part {
			keys[j] = r.s.keys.Lease(k)
		}
		args := []any{r.s.cfg.WorkerID}
		for _, l := range r.s.Leases() {
			args = append(args, strconv.FormatUint(l.token, 10))
		}
		n, err := sweepScript.Run(ctx, r.s.client, keys, args...).Int64()
		if err != nil {
			r.s.log.Warn("lease: sweep stale leases", slog.Any("error", err))
			return false
		}
		if n > 0 {
			r.s.log.Info("lease: deleted leases left by an earlier session with this worker id", slog.Int64("leases", n))
		}
	}
	return true
}

// assign computes (or reuses) the assignment over the eligible members.
func (r *reconciler) assign(v *view) map[ShardKey]string {
	me := r.s.cfg.WorkerID
	members := []string{me}
	for _, m := range v.members {
		if m.ID != me && !m.Since.IsZero() && (v.now.Sub(m.Since) >= r.s.cfg.JoinGrace || !m.Since.After(r.joinedBy)) {
			members = append(members, m.ID)
		}
	}
	slices.Sort(members)
	key := fmt.Sprint(r.layout.Version, ":", strings.Join(members, ","))
	if key != r.assignKey {
		r.assignment = Assign(r.shards, members)
		r.assignKey = key
	}
	return r.assignment
}

func (r *reconciler) claim(ctx context.Context, want []ShardKey) {
	const batch = 256
	for len(want) > 0 {
		n := min(batch, len(want))
		res, err := r.s.claimBatch(ctx, want[:n])
		want = want[n:]
		if err != nil {
			r.s.log.Warn("lease: claim", slog.Any("error", err))
			return
		}
		// Every lease won is started, whatever the other shards' outcomes
		// (with partitions, one may wait out its grace while others claim).
		var grace *GraceError
		var failed error
		for _, c := range res {
			var ge *GraceError
			switch {
			case c.err == nil && c.lease != nil:
				r.h.Acquired(c.lease.Context(), c.lease, c.state)
			case errors.As(c.err, &ge):
				grace = ge
			case !errors.Is(c.err, ErrLeaseHeld) && failed == nil:
				failed = c.err
			}
		}
		if failed != nil {
			r.s.log.Warn("lease: claim", slog.Any("error", failed))
		}
		if grace != nil {
			r.waitGrace(grace)
			return
		}
	}
}

// waitGrace holds claims back until the data-loss grace ge reports is over.
func (r *reconciler) waitGrace(ge *GraceError) {
	now := r.s.clock.Now()
	switch {
	case r.graceUntil.IsZero():
		r.graceFrom = r.s.joined // the probe of a new epoch began at register
	case !now.Before(r.graceUntil.Add(r.s.cfg.TickInterval)):
		r.graceFrom = now // a new wait, not the same one continued
	}
	r.graceUntil = now.Add(ge.Remaining)
	r.s.log.Info("lease: waiting; not claiming", slog.String("reason", GraceReason),
		slog.Duration("wait", ge.Remaining))
}

// revoke hands one lease back: the handler stops the shard, its state is
// saved under the lease's token for the next owner (or cleared, when there is
// none or the shard left the layout: nobody will resume it), and the lease is
// released. A failed save is logged and the release goes ahead (the next owner
// then IDENTIFYs); a failed revoke or release is returned, for the caller to
// report once.
func (r *reconciler) revoke(ctx context.Context, l *Lease, handOver bool) error {
	rctx, cancel := context.WithTimeout(ctx, r.s.cfg.RevokeTimeout)
	defer cancel()
	st, err := r.h.Revoke(rctx, l)
	if err != nil {
		return fmt.Errorf("revoke %v, keeping the lease: %w", l.key, err)
	}
	var saveErr error
	if handOver && st.Resumable() {
		saveErr = l.SaveState(ctx, st)
	} else {
		saveErr = l.ClearState(ctx)
	}
	if saveErr != nil {
		r.s.log.Warn("lease: hand over session", slog.Int("shard_id", l.key.ID), slog.Any("error", saveErr))
	}
	if err := l.Release(ctx); err != nil {
		return fmt.Errorf("release %v: %w", l.key, err)
	}
	return nil
}

// revokeInTick revokes l for tick, which has no caller to return an error
// to: the error is logged here, and the revoke is retried next tick.
func (r *reconciler) revokeInTick(ctx context.Context, l *Lease, handOver bool) {
	if err := r.revoke(ctx, l, handOver); err != nil {
		r.s.log.Warn("lease: revoke", slog.Any("error", err))
	}
}

func (r *reconciler) logRevoke(l *Lease, why, to string) {
	r.s.log.Info("lease: revoking", slog.Int("shard_id", l.key.ID), slog.Int("shard_count", l.key.Count),
		slog.String("reason", why), slog.String("to", to))
}

func sortedLeases(ls []*Lease) []*Lease {
	slices.SortFunc(ls, func(a, b *Lease) int { return compareShards(a.key, b.key) })
	return ls
}
