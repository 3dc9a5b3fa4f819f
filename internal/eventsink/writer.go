package eventsink

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Writer batches one shard's events and commits them in order. Add and Flush
// may be called from any goroutine (the gateway calls Add from the shard's
// event goroutine). The Writer's goroutine runs only while it has events to
// commit: the first event added to an idle Writer starts it, and it ends once
// everything added is committed, so an idle shard's Writer holds no
// goroutine (at most one runs at a time; Close and Abandon stop it).
type Writer struct {
	sink    *Sink
	shard   Shard
	fence   Fence
	rejects Rejections
	log     *slog.Logger

	mu      sync.Mutex
	pending []Event
	spare   []Event
	added   uint64        // events accepted by Add
	held    int           // bytes of events (Event.size) accepted by Add and not yet done
	done    uint64        // events committed, skipped or dropped
	err     error         // terminal: rejection or ErrClosed
	changed chan struct{} // closed and replaced whenever done, pending or err change
	// running: a goroutine commits pending events; it ends (closing exited)
	// only once pending is empty, so events pending always have one, until
	// ctx ends or err is set.
	running bool
	exited  chan struct{} // closed when the last goroutine started returns; nil before

	// Touched only by the Writer's goroutine (and Open), one goroutine after
	// the other (mu orders them): how far the record of expSession is known
	// to have reached, so a rollback is seen.
	expSession string
	expSeq     int
	rebuilt    bool // Rejections.Rebuild was called

	lastSeq atomic.Int64
	ctx     context.Context    // ends on Close/Abandon; bounds every Redis call
	cancel  context.CancelFunc // ends ctx
}

// Rejections tells a Writer what to do when Redis refuses its writes.
type Rejections struct {
	// Retry is asked, from the Writer's goroutine, on ErrFenced: true keeps
	// the batch and tries again after a backoff (nothing is written while the
	// lease is not valid, so retrying is always safe; it is worth it while the
	// owner still believes it holds the lease, e.g. after Redis lost the lease
	// key and before the holder re-asserts it). It must return at once and
	// must not call the Writer. Nil: never retry. ErrStaleSession is never
	// retried.
	Retry func(err error) bool
	// Stopped is called once, from the Writer's goroutine, when the Writer
	// gives up on a refusal; Add and Flush already return the error. It must
	// not call Abandon or Close (they wait for it) and should be brief. The
	// caller must then stop the shard, or after a *RollbackError reopen it
	// from the durable seq. Pending events are dropped; the next owner (or
	// the reopened shard) RESUMEs from the last durable seq.
	Stopped func(err error)
	// Rebuild is called once, from the Writer's goroutine, when Redis lost
	// the record of the session the Writer was committing and the sink keeps
	// a cache: the Writer goes on (the record starts afresh from the current
	// batch, so the stream loses nothing more), but the cache lost the
	// shard's guilds, which only a new session's READY and GUILD_CREATEs bring
	// back. The owner then closes the shard (after this Writer committed
	// what was delivered) and opens it with a new session and a new Writer.
	// It must return at once and must not call the Writer.
	Rebuild func()
}

// Open starts a Writer for shard under fence. from is the session record the
// shard resumes from (zero for none): Redis holding less than that for the
// session is a rollback (see RollbackError), as is any later loss of what the
// Writer committed.
func (s *Sink) Open(shard Shard, fence Fence, from SessionRecord, rejects Rejections) *Writer {
	w := &Writer{
		sink: s, shard: shard, fence: fence, rejects: rejects,
		expSession: from.SessionID, expSeq: from.Sequence,
		log:     s.cfg.Logger.With("shard_id", shard.ID, "shard_count", shard.Count),
		changed: make(chan struct{}),
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.lastSeq.Store(-1)
	return w
}

// Add queues ev. It blocks while MaxPending events wait or the Writer holds
// MaxPendingBytes (backpressure on the shard's event goroutine, never on its
// read loop), bounded by ctx. It returns the Writer's terminal error once
// rejected or closed.
func (w *Writer) Add(ctx context.Context, ev Event) error {
	w.sink.prepare(&ev) // on the caller's goroutine, while the Writer's talks to Redis
	w.mu.Lock()
	if err := w.waitLocked(ctx, func() bool {
		return w.err != nil || (len(w.pending) < w.sink.cfg.MaxPending && w.held < w.sink.cfg.MaxPendingBytes)
	}); err != nil {
		return err
	}
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	w.pending = append(w.pending, ev)
	w.added++
	w.held += ev.size()
	w.countHeld(ev.size())
	w.startLocked()
	w.mu.Unlock()
	return nil
}

// startLocked starts the Writer's goroutine for what is pending, unless one
// runs or the Writer is stopping (Abandon then drops what is pending).
// Called with mu held, so the decision is ordered with the goroutine's
// decision to end (end): an event is never left without one.
func (w *Writer) startLocked() {
	if w.running || w.ctx.Err() != nil {
		return
	}
	w.running, w.exited = true, make(chan struct{})
	go w.loop(w.exited)
}

// Flush waits until every event added before the call is committed (or known
// to be a duplicate). It returns the terminal error if the Writer was rejected
// or closed with events left, or ctx's error.
func (w *Writer) Flush(ctx context.Context) error {
	w.mu.Lock()
	target := w.added
	if err := w.waitLocked(ctx, func() bool { return w.err != nil || w.done >= target }); err != nil {
		return err
	}
	err := w.err
	w.mu.Unlock()
	return err
}

// waitLocked waits, with w.mu held on entry, until ready() holds (checked
// under w.mu after every change). It returns nil with w.mu still held, or
// ctx's error with w.mu released.
func (w *Writer) waitLocked(ctx context.Context, ready func() bool) error {
	for !ready() {
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
		w.mu.Lock()
	}
	return nil
}

// LastSeq is the last seq the Writer saw committed (its resume point), or -1.
func (w *Writer) LastSeq() int { return int(w.lastSeq.Load()) }

// Close flushes, bounded by ctx, then stops the goroutine and waits for it.
// Events not committed by then are dropped (the session record still names
// the last committed seq, so a RESUME replays them).
func (w *Writer) Close(ctx context.Context) error {
	err := w.Flush(ctx)
	w.Abandon()
	return err
}

// Abandon stops the goroutine at once, dropping pending events, and waits for
// it. Use it when the lease is lost: nothing more may be written.
func (w *Writer) Abandon() {
	w.cancel() // from here on, Add starts no goroutine
	w.mu.Lock()
	exited := w.exited
	w.mu.Unlock()
	if exited != nil {
		<-exited
	}
	w.finish(ErrClosed)
}

// finish records a terminal error (the first wins) and drops what is pending.
func (w *Writer) finish(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
	w.pending = nil
	w.done = w.added
	w.countHeld(-w.held)
	w.held = 0
	w.broadcast()
}

// countHeld tells the configured counter of a change in held bytes. Called
// with mu held, with the change to held, so the counter never lags what
// Flush and Add report (the counter takes no lock of the Writer's).
func (w *Writer) countHeld(delta int) {
	if c := w.sink.cfg.PendingBytes; c != nil && delta != 0 {
		c.Add(int64(delta))
	}
}

// broadcast wakes everyone waiting on changed. Called with mu held.
func (w *Writer) broadcast() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// loop commits what is pending until nothing is (then it ends), the Writer
// is stopped, or Redis refuses the writes.
func (w *Writer) loop(exited chan struct{}) {
	for w.linger() {
		rejected := w.drain()
		if rejected != nil && w.rejects.Stopped != nil {
			// Before exited, so Abandon waits for it: the Writer owns this call.
			w.rejects.Stopped(rejected)
		}
		if rejected != nil || w.ctx.Err() != nil {
			break
		}
		if w.end(exited, false) {
			return
		}
	}
	w.end(exited, true)
}

// end ends the goroutine's run (true) when it was stopped or nothing is
// pending. It decides under mu, so an Add came either before (its event is
// pending: the run goes on) or after (it starts the next goroutine).
func (w *Writer) end(exited chan struct{}, stopped bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !stopped && len(w.pending) > 0 {
		return false
	}
	// An idle Writer keeps no batch slices: they would hold as many Events as
	// its largest batch (a shard's open brings a READY and its GUILD_CREATEs)
	// for as long as the shard stays quiet; the next event allocates anew.
	w.spare = nil
	if len(w.pending) == 0 {
		w.pending = nil
	}
	w.running = false
	close(exited)
	return true
}

// linger lets a small batch fill for FlushInterval; false when stopped.
func (w *Writer) linger() bool {
	d := w.sink.cfg.FlushInterval
	if d <= 0 {
		return true
	}
	w.mu.Lock()
	full := len(w.pending) >= w.sink.cfg.BatchSize
	w.mu.Unlock()
	if full {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// drain commits everything pending, batch by batch. It returns the rejection
// if Redis refused the writes; it also returns when the Writer is stopped.
func (w *Writer) drain() error {
	for {
		w.mu.Lock()
		batch := w.pending
		w.pending, w.spare = w.spare[:0], nil
		if len(batch) > 0 {
			w.broadcast() // Add may be waiting for room
		}
		w.mu.Unlock()
		if len(batch) == 0 {
			return nil
		}
		for start := 0; start < len(batch); {
			end := w.chunkEnd(batch, start)
			if err := w.commit(batch[start:end]); err != nil || w.ctx.Err() != nil {
				return err
			}
			w.mu.Lock()
			w.done += uint64(end - start)
			n := dataBytes(batch[start:end])
			w.held -= n
			w.countHeld(-n) // before Flush's waiters wake: they read a counter without these
			w.broadcast()
			w.mu.Unlock()
			start = end
		}
		clear(batch)
		w.mu.Lock()
		w.spare = batch[:0]
		w.mu.Unlock()
	}
}

// chunkEnd picks the end of the script call starting at start: BatchSize
// events, MaxBatchBytes of data and cache changes, one session.
func (w *Writer) chunkEnd(batch []Event, start int) int {
	size, end := 0, start
	for end < len(batch) && end-start < w.sink.cfg.BatchSize {
		if end > start && (batch[end].SessionID != batch[start].SessionID ||
			size+batch[end].size() > w.sink.cfg.MaxBatchBytes) {
			break
		}
		size += batch[end].size()
		end++
	}
	return end
}

// commit writes one chunk, retrying Redis errors with backoff until it
// succeeds, is rejected (returned), or the Writer is stopped.
func (w *Writer) commit(chunk []Event) error {
	backoff := w.sink.cfg.RetryBackoffMin
	session := chunk[0].SessionID
	for {
		expect := 0
		if session == w.expSession {
			expect = w.expSeq
		}
		res, err := w.sink.commit(w.ctx, w.shard, w.fence, expect, chunk)
		if err == nil {
			w.expSession, w.expSeq = session, res.LastSeq
			w.lastSeq.Store(int64(res.LastSeq))
			if fn := w.sink.cfg.Committed; fn != nil {
				if evs := committedOf(chunk, expect, res.LastSeq); len(evs) > 0 {
					fn(w.shard, evs)
				}
			}
			return nil
		}
		if w.ctx.Err() != nil {
			return nil
		}
		switch {
		case errors.Is(err, errLostRecord):
			// Nothing of the session is durable any more and Discord cannot
			// be asked for all of it cheaply: start the record afresh from
			// this batch, at once.
			w.expSession = ""
			w.lostRecord(err)
			continue
		case errors.Is(err, ErrFenced) && w.rejects.Retry != nil && w.rejects.Retry(err):
			w.log.Warn("event sink: lease not valid in Redis yet, retrying", "err", err, "backoff", backoff)
		case Rejected(err):
			if w.rejects.Stopped == nil { // otherwise Stopped reports it
				w.log.Warn("event sink rejected the shard's writes", "err", err)
			}
			w.finish(err)
			return err
		default:
			w.log.Warn("event sink commit failed, retrying", "err", err, "backoff", backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-w.ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, w.sink.cfg.RetryBackoffMax)
	}
}

// lostRecord reports that Redis lost the session record the Writer was
// committing to. The cache lost the shard's guilds with it (when the sink
// keeps one): the owner is asked, once, for a new session to rebuild them.
func (w *Writer) lostRecord(err error) {
	rebuild := w.sink.cfg.Cache.Kinds != 0 && w.rejects.Rebuild != nil
	w.log.Error("Redis lost the shard's session record (data loss?): the stream lacks the session's events up to here",
		"session_seq", w.expSeq, "cache_rebuild", rebuild, "err", err)
	if rebuild && !w.rebuilt {
		w.rebuilt = true
		w.rejects.Rebuild()
	}
}

// committedOf picks the events of chunk the script wrote: as it does, those
// above the record's seq (from: what this Writer knew of it, 0 for a new
// session), each above the one before, up to the record's seq after the
// call. Under the Writer's fence only the Writer moves the record, so a
// record found ahead of from was moved by an earlier attempt of this very
// chunk whose reply was lost: its events count here, once, as the stream
// holds them once.
func committedOf(chunk []Event, from, last int) []Event {
	out := make([]Event, 0, len(chunk))
	for _, ev := range chunk {
		if ev.Seq > from && ev.Seq <= last {
			out = append(out, ev)
			from = ev.Seq
		}
	}
	return out
}

// dataBytes is the size of events, as counted in Writer.held.
func dataBytes(evs []Event) int {
	n := 0
	for _, ev := range evs {
		n += ev.size()
	}
	return n
}
