package gateway

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// BacklogError is why a shard stopped reading: its queue of dispatches not
// yet handled reached Config.BacklogBytes, or the shared BacklogBudget is
// spent. The connection is closed resumably; once the handler has drained the
// queue to half the bound (and the budget to half its limit), the shard
// RESUMEs from the last sequence it received, so nothing is lost.
type BacklogError struct {
	Bytes, Bound           int64 // the shard's queued bytes and its bound
	BudgetBytes, BudgetMax int64 // the shared budget's bytes and limit (0, 0 without one)
}

func (e *BacklogError) Error() string {
	budget := ""
	if e.BudgetMax > 0 {
		budget = fmt.Sprintf("; shared budget %d of %d", e.BudgetBytes, e.BudgetMax)
	}
	return fmt.Sprintf("gateway: backlog full (%d bytes queued, bound %d%s): pausing reads until the handler drains it",
		e.Bytes, e.Bound, budget)
}

// BacklogBudget bounds the bytes several shards (a process's) hold in memory
// on their way to the handler, beyond each shard's own bound. Every queued
// dispatch counts until its handler returns; Add counts what the handler
// keeps for longer (a sink's pending events). A shard that queues a dispatch
// while the budget is spent pauses like a shard over its own bound, and
// resumes once the budget is back to half its limit. Share one among the
// shards with WithBacklogBudget; it is safe for concurrent use.
type BacklogBudget struct {
	limit   int64 // 0: counted, never full
	bytes   atomic.Int64
	waiters atomic.Int32 // goroutines in waitBelow
	pauses  atomic.Uint64
	overNS  atomic.Int64

	mu         sync.Mutex
	drained    chan struct{} // closed when bytes fall to limit/2 while someone waits
	live       map[*dispatcher]struct{}
	framesDone uint64 // frames of dispatchers no longer live
}

// NewBacklogBudget returns a budget of limit bytes; 0 counts without a limit.
func NewBacklogBudget(limit int64) *BacklogBudget {
	return &BacklogBudget{limit: max(limit, 0), live: map[*dispatcher]struct{}{}}
}

// BacklogStats is a budget's reading.
type BacklogStats struct {
	Bytes, Limit int64         // bytes held now, and the limit (0: none)
	Pauses       uint64        // shards paused over a bound
	OverBound    time.Duration // time shards spent paused, added when each resumes
	FramesRead   uint64        // dispatches read from the sockets
}

// Stats reads the budget. FramesRead minus the handler calls is the backlog
// in events.
func (b *BacklogBudget) Stats() BacklogStats {
	b.mu.Lock()
	frames := b.framesDone
	for d := range b.live {
		frames += d.framesRead()
	}
	b.mu.Unlock()
	return BacklogStats{Bytes: b.bytes.Load(), Limit: b.limit, Pauses: b.pauses.Load(),
		OverBound: time.Duration(b.overNS.Load()), FramesRead: frames}
}

// Add counts delta bytes held on behalf of the shards (negative: released).
func (b *BacklogBudget) Add(delta int64) {
	if b == nil {
		return
	}
	now := b.bytes.Add(delta)
	if delta < 0 && b.waiters.Load() > 0 && now <= b.limit/2 {
		b.mu.Lock()
		if b.drained != nil && b.bytes.Load() <= b.limit/2 {
			close(b.drained)
			b.drained = nil
		}
		b.mu.Unlock()
	}
}

// full reports whether total bytes spend the budget.
func (b *BacklogBudget) full(total int64) bool { return b != nil && b.limit > 0 && total >= b.limit }

// waitBelow waits until the budget is back to half its limit, or done or
// stop closes; it reports whether it got there.
func (b *BacklogBudget) waitBelow(done, stop <-chan struct{}) bool {
	if b == nil || b.limit == 0 {
		return true
	}
	b.waiters.Add(1)
	defer b.waiters.Add(-1)
	for {
		// waiters is raised before bytes is read, so a release that brings
		// bytes down either is seen here or sees a waiter.
		b.mu.Lock()
		if b.bytes.Load() <= b.limit/2 {
			b.mu.Unlock()
			return true
		}
		if b.drained == nil {
			b.drained = make(chan struct{})
		}
		ch := b.drained
		b.mu.Unlock()
		select {
		case <-ch:
		case <-done:
			return false
		case <-stop:
			return false
		}
	}
}

func (b *BacklogBudget) attach(d *dispatcher) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.live[d] = struct{}{}
	b.mu.Unlock()
}

// detach folds a finished dispatcher's frame count into the budget.
func (b *BacklogBudget) detach(d *dispatcher) {
	if b == nil {
		return
	}
	frames := d.framesRead()
	b.mu.Lock()
	delete(b.live, d)
	b.framesDone += frames
	b.mu.Unlock()
}

// resumed records one pause that lasted over.
func (b *BacklogBudget) resumed(over time.Duration) {
	if b != nil {
		b.overNS.Add(int64(over))
	}
}

func (b *BacklogBudget) paused() {
	if b != nil {
		b.pauses.Add(1)
	}
}

func (b *BacklogBudget) reading() (bytes, limit int64) {
	if b == nil {
		return 0, 0
	}
	return b.bytes.Load(), b.limit
}

// countLocked counts a pushed event of n bytes (d.mu held) and returns the
// pause to ask for when it fills the shard's bound or the budget.
func (d *dispatcher) countLocked(n int64) *BacklogError {
	d.pushed += n
	d.frames++
	var total int64
	if d.budget != nil {
		total = d.budget.bytes.Add(n)
	}
	backlog := d.pushed - d.released.Load()
	if d.full || (backlog < d.bound && !d.budget.full(total)) {
		return nil
	}
	d.full, d.fullAt = true, time.Now()
	_, limit := d.budget.reading()
	return &BacklogError{Bytes: backlog, Bound: d.bound, BudgetBytes: total, BudgetMax: limit}
}

// release uncounts n bytes whose handler returned, and wakes waitDrained
// when the backlog is down to half the bound.
func (d *dispatcher) release(n int64) {
	if n == 0 {
		return
	}
	released := d.released.Add(n)
	d.budget.Add(-n)
	if !d.draining.Load() {
		return
	}
	d.mu.Lock()
	if d.drained != nil && d.pushed-released <= d.bound/2 {
		close(d.drained)
		d.drained = nil
		d.draining.Store(false)
	}
	d.mu.Unlock()
}

// releaseRest uncounts what was never handled (dropped, or the queue of a
// stopped dispatcher), once nothing more can be pushed or handled.
func (d *dispatcher) releaseRest() {
	d.mu.Lock()
	rest := d.pushed - d.released.Load()
	d.mu.Unlock()
	d.release(rest)
}

func (d *dispatcher) framesRead() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.frames
}

// waitDrained waits until the backlog is down to half the shard's bound and
// the budget to half its limit, or the dispatcher or stop ends. It reports
// whether the shard may read again, and for how long it was paused.
func (d *dispatcher) waitDrained(stop <-chan struct{}) (bool, time.Duration) {
	d.mu.Lock()
	// draining is set before released is read, so a release either is seen
	// here or sees draining and closes drained.
	d.draining.Store(true)
	if d.pushed-d.released.Load() > d.bound/2 {
		d.drained = make(chan struct{})
	} else {
		d.draining.Store(false)
	}
	ch := d.drained
	d.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-d.done:
			return false, 0
		case <-stop:
			return false, 0
		}
	}
	if !d.budget.waitBelow(d.done, stop) {
		return false, 0
	}
	d.mu.Lock()
	over := time.Since(d.fullAt)
	d.full = false
	d.mu.Unlock()
	d.budget.resumed(over)
	return true, over
}

// backlog reports whether a pause was asked and has not ended, and the bytes
// queued and not yet handled.
func (d *dispatcher) backlog() (pausing bool, bytes int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.full, d.pushed - d.released.Load()
}
