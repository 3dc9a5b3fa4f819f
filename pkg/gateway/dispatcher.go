package gateway

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
)

// dispatchItem is one queued call to the user: an event, or the close handler.
type dispatchItem struct {
	t    EventType
	seq  int
	data json.RawMessage

	closeErr       error // set: call the close handler instead
	closeReconnect bool
}

// dispatcher runs the user's callbacks for one Open..Close span of a gateway,
// in order, on one goroutine it owns, fed by an unbounded FIFO. The read loop
// only appends, so a slow handler delays later events but never the read
// loop, heartbeats or ACKs.
type dispatcher struct {
	g       *gatewayImpl
	handler EventHandlerFunc
	onClose CloseHandlerFunc

	mu      sync.Mutex
	queue   []dispatchItem
	spare   []dispatchItem // the previous batch's backing array, reused
	stopped bool           // no more items will be pushed; exit once drained

	abandon atomic.Bool // drop what is queued; exit after the current callback
	prev    *dispatcher // the previous Open's dispatcher: wait for it first, so callbacks never overlap

	wake        chan struct{} // cap 1
	done        chan struct{}
	inCallback  atomic.Bool
	deliveredTo atomic.Int64 // seq of the last event whose handler returned
}

func newDispatcher(g *gatewayImpl, prev *dispatcher, startSeq int) *dispatcher {
	d := &dispatcher{g: g, handler: g.handler, onClose: g.cfg.CloseHandler, prev: prev,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	d.deliveredTo.Store(int64(startSeq))
	go d.run()
	return d
}

// push queues an item. It never blocks.
func (d *dispatcher) push(it dispatchItem) {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return
	}
	d.queue = append(d.queue, it)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// stop tells the dispatcher that nothing more will be pushed; it exits once
// the queue is drained. Done reports when it has.
func (d *dispatcher) stop() {
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// drop makes the dispatcher discard what is still queued (after stop, when
// the caller gave up waiting).
func (d *dispatcher) drop() {
	d.abandon.Store(true)
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) run() {
	defer close(d.done)
	if d.prev != nil {
		<-d.prev.done
		d.prev = nil
	}
	for {
		d.mu.Lock()
		if len(d.queue) == 0 {
			stopped := d.stopped
			d.mu.Unlock()
			if stopped {
				return
			}
			<-d.wake
			continue
		}
		// Swap in the spare array; push appends to it while we run the batch.
		batch := d.queue
		d.queue, d.spare = d.spare[:0], nil
		d.mu.Unlock()
		for i := range batch {
			if d.abandon.Load() {
				return
			}
			d.call(&batch[i])
			batch[i] = dispatchItem{} // let the event's data be collected
		}
		d.mu.Lock()
		d.spare = batch[:0]
		d.mu.Unlock()
	}
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
	if d.handler != nil {
		d.handler(d.g, it.t, it.seq, it.data)
	}
	d.deliveredTo.Store(int64(it.seq))
}
