package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shardfleet/shardfleet/pkg/redislimiter"
	"github.com/shardfleet/shardfleet/pkg/sharding"
)

// A shard refused an identify permit because the fleet's daily budget is at
// its reserve floor is stopped, not retried: it keeps its lease and shows
// "budget_floor". One worker-wide loop (budgetLoop) owns the way back: at
// the earliest reset of the stopped shards (plus BudgetResetMargin) it reads
// Discord's budget again, stores it (SetBudget) and reopens them through
// openShard, which IDENTIFYs through the limiter; a shard still at the floor
// (another worker took the last starts) stops again and the loop re-arms.
// When Discord itself still reports the budget at the floor, the loop re-arms
// for the reset_after it reports without reopening anything (each reopen
// would cost a gateway connection, refused). Without a known reset, or when
// reading the budget fails, it re-checks every BudgetRecheck.
//
// State of one shard (shardRun, guarded by Worker.mu):
//
//	floor != nil, !floorStopped  refused; being handed off (budgetFloor)
//	floor != nil, floorStopped   stopped; due for a re-check at floorCheckAt
//	floor == nil                 running, or reopened (takeSteps opens it)

// budgetFloor stops a shard whose identify permit was refused at the budget
// floor. It runs on a gateway goroutine (meteredLimiter) or in openShard, so
// it must not block: the stop runs on one of the worker's goroutines, which
// then tells the budget loop the shard is due for a re-check.
func (w *Worker) budgetFloor(shardID int, err error) {
	now := time.Now()
	checkAt := now.Add(w.cfg.BudgetRecheck)
	var be *redislimiter.BudgetError
	if errors.As(err, &be) && be.ResetAfter > 0 {
		checkAt = now.Add(be.ResetAfter + w.cfg.BudgetResetMargin)
	}
	floorErr := fmt.Errorf("%w: %w", ErrBudgetFloor, err)
	var runs []*shardRun
	w.mu.Lock()
	for key, r := range w.shards {
		if key.ID == shardID && r.fatal == nil && r.floor == nil {
			r.floor, r.floorStopped, r.floorCheckAt = floorErr, false, checkAt
			r.floorGen++
			runs = append(runs, r)
		}
	}
	w.mu.Unlock()
	if len(runs) == 0 {
		return // already stopped
	}
	w.log.Error("identify budget at its reserve floor: the shard stops until the budget resets",
		"shard_id", shardID, "shard_count", runs[0].key.Count, "err", err, "next_check", checkAt)
	w.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		// HandoffShard takes the shard out of the manager before it closes
		// the connection, so even a timed-out stop leaves it free to reopen.
		_, _ = w.mgr.HandoffShard(ctx, shardID)
		w.mu.Lock()
		for _, r := range runs {
			if r.floor == floorErr {
				r.floorStopped = true
			}
		}
		w.mu.Unlock()
		w.wakeBudgetLoop()
	})
}

// wakeBudgetLoop makes the budget loop re-read the shards' check times.
func (w *Worker) wakeBudgetLoop() {
	select {
	case w.budgetWake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// budgetLoop re-checks the shards stopped at the budget floor, one timer for
// the whole worker, until ctx ends. serveSessions owns it. Every re-check
// moves each due shard's check time forward or clears it, so the loop never
// spins on a check time in the past.
func (w *Worker) budgetLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.budgetWake:
		case <-timer.C:
			w.recheckFloor(ctx)
		}
		if ctx.Err() != nil {
			return
		}
		if at, ok := w.nextFloorCheck(); ok {
			timer.Reset(max(time.Until(at), 0))
		} else {
			timer.Stop()
		}
	}
}

// nextFloorCheck is the earliest check time of the shards stopped at the floor.
func (w *Worker) nextFloorCheck() (at time.Time, ok bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	for _, r := range w.shards {
		if r.floor != nil && r.floorStopped && (!ok || r.floorCheckAt.Before(at)) {
			at, ok = r.floorCheckAt, true
		}
	}
	return at, ok
}

// recheckFloor reads Discord's budget once for every stopped shard whose
// check is due, stores it, and reopens them unless the budget is still at
// the floor (then they wait for its next reset: reopening would only be
// refused again). After a token rejection (4004) they stay stopped, as fatal.
func (w *Worker) recheckFloor(ctx context.Context) {
	now := time.Now()
	var due []*shardRun
	w.mu.RLock()
	for _, r := range w.shards {
		if r.floor != nil && r.floorStopped && !r.floorCheckAt.After(now) {
			due = append(due, r)
		}
	}
	tokenRejected := w.fatalErr != nil
	w.mu.RUnlock()
	if len(due) == 0 {
		return
	}
	next := time.Time{} // zero: reopen
	if !tokenRejected {
		next = w.budgetRecheckTime(ctx, now, len(due))
		if ctx.Err() != nil {
			return // stopping
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range due {
		switch {
		case r.floor == nil || !r.floorStopped:
			// Reopened or stopped again meanwhile.
		case r.fatal != nil || w.fatalErr != nil:
			if r.fatal == nil {
				r.fatal = w.fatalErr
			}
			r.floor = nil
		case next.IsZero() && !r.revoked:
			r.floor, r.floorStopped = nil, false
			stepDue(w, r, r.reopen, struct{}{})
		case next.IsZero():
			// Handed off since: its lease is ending, nothing to reopen.
			r.floorCheckAt = now.Add(w.cfg.BudgetRecheck)
		default:
			r.floorCheckAt = next
		}
	}
}

// budgetRecheckTime reads and stores Discord's budget; it returns when to
// check again, or the zero time when the budget is above the floor.
func (w *Worker) budgetRecheckTime(ctx context.Context, now time.Time, shards int) time.Time {
	budget, err := w.refreshBudget(ctx)
	reserve := w.limiter.Config().BudgetReserve
	switch {
	case err != nil:
		next := now.Add(w.cfg.BudgetRecheck)
		if ctx.Err() == nil {
			w.log.Warn("read identify budget; shards at the budget floor re-checked later", "err", err,
				"shards", shards, "next_check", next)
		}
		return next
	case budget.Remaining <= reserve:
		next := now.Add(w.cfg.BudgetRecheck)
		if reset := budget.ResetAfterDuration(); reset > 0 {
			next = now.Add(reset + w.cfg.BudgetResetMargin)
		}
		w.log.Warn("identify budget still at its reserve floor", "remaining", budget.Remaining, "reserve", reserve,
			"shards", shards, "next_check", next)
		return next
	}
	w.log.Info("identify budget reset: reopening the shards stopped at its floor", "remaining", budget.Remaining,
		"shards", shards)
	return time.Time{}
}

// refreshBudget reads the bot's session_start_limit from Discord (GET
// /gateway/bot, as discover does) and stores it as the fleet's budget.
func (w *Worker) refreshBudget(ctx context.Context) (sharding.SessionStartLimit, error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.BudgetRecheck)
	defer cancel()
	gb, err := sharding.FetchGatewayBot(ctx, w.cfg.HTTPClient, w.cfg.APIURL, w.cfg.Token)
	if err != nil {
		return sharding.SessionStartLimit{}, fmt.Errorf("read identify budget: %w", err)
	}
	if err := w.storeBudget(ctx, gb.SessionStartLimit); err != nil {
		return sharding.SessionStartLimit{}, err
	}
	return gb.SessionStartLimit, nil
}

// storeBudget stores Discord's session_start_limit as the fleet's budget and
// updates the gauge. A reset_after of 0 (resetting now) is stored for 1 ms.
func (w *Worker) storeBudget(ctx context.Context, l sharding.SessionStartLimit) error {
	w.m.budget.Set(float64(l.Remaining))
	if err := w.limiter.SetBudget(ctx, l.Remaining, max(l.ResetAfterDuration(), time.Millisecond)); err != nil {
		return fmt.Errorf("store identify budget: %w", err)
	}
	return nil
}
