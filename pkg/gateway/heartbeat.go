package gateway

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// heartbeater sends a connection's heartbeats from timer callbacks (no
// goroutine while idle). The first beat waits interval*jitter, the next ones
// a full interval. A beat that finds the previous one un-ACKed, with nothing
// at all received since it, closes the connection as a zombie. (Discord's
// rule is "no ACK between two beats"; under a flood of dispatches the ACK can
// sit behind them in the server's queue, and a connection that is delivering
// data is not dead: disgo's issues #499/#501 are that false positive.) stop
// waits for a callback in progress.
type heartbeater struct {
	c        *connection
	received atomic.Bool // a message arrived since the last beat (set by the read loop)

	mu          sync.Mutex
	timer       *time.Timer
	interval    time.Duration
	stopped     bool
	requested   bool // the server asked for a beat (op 1): send now, skip the zombie check
	awaitingAck bool
	sentAt      time.Time
	wg          sync.WaitGroup
}

// start begins heartbeating at HELLO's interval; later calls do nothing.
func (h *heartbeater) start(interval time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped || h.timer != nil {
		return
	}
	h.interval = interval
	h.timer = time.AfterFunc(heartbeatJitter(interval, defaultRand), h.tick)
}

// beatNow answers the server's op 1 with a heartbeat at once.
func (h *heartbeater) beatNow() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped || h.timer == nil {
		return
	}
	h.requested = true
	h.timer.Reset(0)
}

func (h *heartbeater) tick() {
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return
	}
	h.wg.Add(1)
	defer h.wg.Done()
	forced := h.requested
	h.requested = false
	flowing := h.received.Swap(false)
	zombie := !forced && h.awaitingAck && !flowing
	if !zombie {
		h.awaitingAck, h.sentAt = true, time.Now()
	}
	interval := h.interval
	h.mu.Unlock()

	if zombie {
		h.c.fail(ErrZombie, ActionResume, CloseCodeZombie, "heartbeat not acknowledged")
		return
	}
	ctx, cancel := context.WithTimeout(h.c.readCtx, interval)
	err := h.c.writeHeartbeat(ctx)
	cancel()
	if err != nil {
		if h.c.readCtx.Err() == nil {
			h.c.fail(fmt.Errorf("heartbeat: %w", err), ActionResume, CloseCodeZombie, "heartbeat failed")
		}
		return
	}
	h.mu.Lock()
	if !h.stopped {
		h.timer.Reset(interval)
	}
	h.mu.Unlock()
}

// ack records op 11 and returns the heartbeat's round trip.
func (h *heartbeater) ack() (time.Duration, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.awaitingAck {
		return 0, false
	}
	h.awaitingAck = false
	return time.Since(h.sentAt), true
}

// stop ends heartbeating and waits for a beat in progress.
func (h *heartbeater) stop() {
	h.mu.Lock()
	h.stopped = true
	if h.timer != nil {
		h.timer.Stop()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// heartbeatPayload is op 1 with the last sequence, or null before any.
func (c *connection) heartbeatPayload() []byte {
	g := c.g
	g.mu.Lock()
	seq, has := g.state.Sequence, g.hasSeq
	g.mu.Unlock()
	b := make([]byte, 0, 32)
	b = append(b, `{"op":1,"d":`...)
	if has {
		b = strconv.AppendInt(b, int64(seq), 10)
	} else {
		b = append(b, "null"...)
	}
	return append(b, '}')
}
