package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// dispatchItem is one queued call to the user: an event, or the close handler.
type dispatchItem struct {
	t    EventType
	seq  int
	data json.RawMessage

	closeErr       error // set: call the close handler instead
	closeReconnect bool
}

// dispatcherLinger is how long an idle dispatcher goroutine waits for more
// events before exiting; an idle shard then holds no dispatcher goroutine.
// It is short because the runtime never frees a goroutine descriptor (about
// 0.5 KiB) and keeps stack spans that mix live and dead stacks: every
// dispatcher still lingering while other shards open costs that for good.
// A restart is one goroutine start, at most ten a second per shard. The
// per-shard memory figures here come from the heap profile of
// TestIdleShardMemory (its command is in docs/benchmarks.md).
const dispatcherLinger = 100 * time.Millisecond

// dispatcher runs the user's callbacks for one Open..Close span of a gateway,
// in order, on one goroutine at a time, fed by a FIFO. The read loop only
// appends, so a slow handler delays later events but never the read loop,
// heartbeats or ACKs. The FIFO is bounded in bytes instead (backlog.go): the
// push that fills it asks the run to pause the shard (onFull), which closes
// the connection resumably and RESUMEs once the queue has drained.
//
// The goroutine starts with the first item and exits after dispatcherLinger
// without work, so idle shards cost no stack; push restarts it. The
// dispatcher owns it: done closes once the dispatcher is stopped and the
// goroutine has exited for good.
type dispatcher struct {
	g       *gatewayImpl
	handler EventHandlerFunc
	onClose CloseHandlerFunc

	mu       sync.Mutex
	queue    []dispatchItem
	spare    []dispatchItem // the previous batch's backing array, reused
	stopped  bool           // no more items will be pushed; exit once drained
	running  bool           // a goroutine is running (or about to)
	doneOnce sync.Once

	abandon     atomic.Bool   // drop what is queued; exit after the current callback
	prev        *dispatcher   // the previous Open's dispatcher: wait for it first, so callbacks never overlap
	wake        chan struct{} // cap 1; made for each goroutine, nil while none runs (under mu)
	unwoken     atomic.Bool   // items were queued since the last wake-up (see flush)
	done        chan struct{}
	inCallback  atomic.Bool
	deliveredTo atomic.Int64 // seq of the last event whose handler returned

	// Backlog accounting: bytes of d queued and not yet handled are pushed
	// minus released. The read loop pays one atomic add per event (the
	// budget's), the rest is under mu, which push takes anyway.
	bound    int64               // the shard's bound in bytes
	budget   *BacklogBudget      // shared with other shards, or nil
	onFull   func(*BacklogError) // asks the run to pause; called once per pause
	pushed   int64               // under mu: bytes ever pushed
	frames   uint64              // under mu: dispatches ever pushed
	full     bool                // under mu: a pause was asked and has not ended
	fullAt   time.Time           // under mu: when it was asked
	drained  chan struct{}       // under mu: closed when the backlog is down to bound/2
	draining atomic.Bool         // drained is being waited for
	released atomic.Int64        // bytes whose handler returned (or dropped)
}

func newDispatcher(g *gatewayImpl, prev *dispatcher, startSeq int) *dispatcher {
	d := &dispatcher{g: g, handler: g.handler, onClose: g.cfg.CloseHandler, prev: prev,
		done: make(chan struct{}), bound: g.cfg.BacklogBytes, budget: g.cfg.BacklogBudget}
	d.deliveredTo.Store(int64(startSeq))
	d.budget.attach(d)
	return d
}

// push queues an item and wakes the goroutine. It never blocks; the event
// that fills the backlog is queued and asks for a pause.
func (d *dispatcher) push(it dispatchItem) {
	d.enqueue(it)
	d.flush()
}

// pushDeferred queues an event like push but leaves the wake-up to the next
// flush. The read loop flushes before every read of its socket that could
// block (socket.Read), so the events of one socket read cost one wake-up of
// the dispatcher goroutine instead of one each, and none waits on a blocked
// read loop.
func (d *dispatcher) pushDeferred(it dispatchItem) {
	d.enqueue(it)
}

// flush wakes the goroutine if items were queued without a wake-up. Safe
// from any goroutine.
func (d *dispatcher) flush() {
	if !d.unwoken.Swap(false) {
		return
	}
	d.mu.Lock()
	wake := d.wake
	d.mu.Unlock()
	select {
	case wake <- struct{}{}:
	default:
	}
}

// enqueue queues an item, starting the goroutine if none runs; a running
// one is left for flush to wake.
func (d *dispatcher) enqueue(it dispatchItem) {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return
	}
	d.queue = append(d.queue, it)
	var full *BacklogError
	if it.closeErr == nil {
		full = d.countLocked(int64(len(it.data)))
	}
	start := !d.running
	if start {
		d.running, d.wake = true, make(chan struct{}, 1)
	} else {
		d.unwoken.Store(true)
	}
	wake := d.wake
	d.mu.Unlock()
	if full != nil {
		d.onFull(full)
	}
	if start {
		go d.run(wake)
	}
}

// stop tells the dispatcher that nothing more will be pushed; done closes
// once the queue is drained.
func (d *dispatcher) stop() {
	d.mu.Lock()
	d.stopped = true
	idle, wake := !d.running, d.wake
	d.mu.Unlock()
	if idle {
		d.finish()
		return
	}
	select {
	case wake <- struct{}{}:
	default:
	}
}

// drop makes the dispatcher discard what is still queued.
func (d *dispatcher) drop() {
	d.abandon.Store(true)
	d.stop()
}

func (d *dispatcher) finish() {
	d.doneOnce.Do(func() {
		d.releaseRest()
		d.budget.detach(d)
		close(d.done)
	})
}

// run is the dispatcher goroutine; wake is its own wake-up channel.
func (d *dispatcher) run(wake chan struct{}) {
	if d.prev != nil {
		<-d.prev.done
	}
	var idle *time.Timer
	defer func() {
		if idle != nil {
			idle.Stop()
		}
	}()
	for {
		d.mu.Lock()
		if len(d.queue) == 0 || d.abandon.Load() {
			if d.stopped {
				d.queue, d.running, d.wake = nil, false, nil
				d.mu.Unlock()
				d.finish()
				return
			}
			d.mu.Unlock()
			if idle == nil {
				idle = time.NewTimer(dispatcherLinger)
			} else {
				idle.Reset(dispatcherLinger)
			}
			select {
			case <-wake:
			case <-idle.C:
				if d.exitIdle() {
					return
				}
			}
			continue
		}
		batch := d.queue
		d.queue, d.spare = d.spare[:0], nil
		d.mu.Unlock()
		for i := range batch {
			if d.abandon.Load() {
				break
			}
			d.call(&batch[i])
			n := len(batch[i].data)
			batch[i] = dispatchItem{} // the backlog no longer holds it
			d.release(int64(n))
		}
		clear(batch) // let the events' data be collected
		d.mu.Lock()
		d.spare = batch[:0]
		d.mu.Unlock()
	}
}

// exitIdle ends the goroutine after dispatcherLinger without work, unless
// something arrived meanwhile; push starts a new one when needed.
func (d *dispatcher) exitIdle() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.queue) > 0 || d.stopped {
		return false
	}
	d.running, d.wake = false, nil
	d.queue, d.spare = nil, nil // an idle shard keeps no batch arrays
	return true
}

// wait waits, bounded by ctx, until the dispatcher has delivered everything
// queued and exited. It does not wait when called from inside a callback (a
// handler that closes its own shard), which would wait for itself. It reports
// whether the queue was fully delivered; if not, what is left is dropped.
func (d *dispatcher) wait(ctx context.Context) bool {
	d.stop()
	if d.inCallback.Load() {
		d.drop()
		return false
	}
	select {
	case <-d.done:
		return !d.abandon.Load()
	case <-ctx.Done():
		d.drop()
		return false
	}
}

func (d *dispatcher) call(it *dispatchItem) {
	d.inCallback.Store(true)
	defer d.inCallback.Store(false)
	if it.closeErr != nil {
		if d.onClose != nil {
			d.onClose(d.g, it.closeErr, it.closeReconnect)
		}
		return
	}
	if it.t == EventTypeReady || it.t == EventTypeResumed {
		d.g.log.Info("gateway ready", slog.String("event", string(it.t)), slog.Int("seq", it.seq))
	}
	if d.handler != nil {
		d.handler(d.g, it.t, it.seq, it.data)
	}
	d.deliveredTo.Store(int64(it.seq))
}
