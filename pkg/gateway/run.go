package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// run is one Open..Close span of a gateway: goroutines (step, one at a time)
// that connect, serve the connection, and reconnect with backoff until it is
// closed, a fatal close stops it, or a failure happens with AutoReconnect off. Its
// owner is the gateway: Close/Handoff stop it and wait for it; Open reaps it
// when it ends on its own.
type run struct {
	g      *gatewayImpl
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when the chain of step goroutines ends
	disp   *dispatcher

	opened     chan error // cap 1: nil at the first READY/RESUMED, or why the run ended before one
	openedOnce sync.Once

	mu            sync.Mutex
	closing       bool
	closeCode     int
	closeReason   string
	conn          *connection
	attemptCancel context.CancelFunc // cancels the latest attempt's context
	finished      bool
	lastErr       error
	everReady     bool
}

func newRun(g *gatewayImpl, prevDisp *dispatcher) *run {
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{g: g, ctx: ctx, cancel: cancel, done: make(chan struct{}), opened: make(chan error, 1)}
	r.disp = newDispatcher(g, prevDisp, g.State().Sequence)
	return r
}

// attemptContext returns the context of one connection attempt: it bounds
// the dial and is then the connection's readCtx. It is not derived from
// r.ctx, since a context keeps the map in which it tracks its children for
// as long as it lives, children or not (0.25 KiB per idle shard); stop
// cancels it instead.
func (r *run) attemptContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	r.mu.Lock()
	r.attemptCancel = cancel
	r.mu.Unlock()
	// Checked after publishing cancel: a stop before this is seen here, a
	// stop after it finds cancel.
	if r.ctx.Err() != nil {
		cancel()
	}
	return ctx, cancel
}

// stop cancels r.ctx and the current attempt: whatever is in progress gives
// up at once.
func (r *run) stop() {
	r.cancel()
	r.mu.Lock()
	cancel := r.attemptCancel
	r.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

func (r *run) signalOpened(err error) {
	r.openedOnce.Do(func() { r.opened <- err })
}

func (r *run) isFinished() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.finished
}

// retryAfter is how long err asks the next connection attempt to wait, when
// it carries a RetryAfter() time.Duration method (see IdentifyLimiter); else 0.
func retryAfter(err error) time.Duration {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return ra.RetryAfter()
	}
	return 0
}

func (r *run) lastError() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

// requestClose makes the run stop: the live connection (if any) is closed
// with code, and no reconnect follows.
func (r *run) requestClose(code int, reason string) {
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		return
	}
	r.closing, r.closeCode, r.closeReason = true, code, reason
	c := r.conn
	r.mu.Unlock()
	if c != nil {
		c.fail(ErrClosed, ActionResume, code, reason)
	} else {
		r.stop()
	}
}

func (r *run) isClosing() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closing
}

// attach makes c the run's live connection; if a close was requested in the
// meantime, c is closed at once with the requested code.
func (r *run) attach(c *connection) {
	r.mu.Lock()
	r.conn = c
	closing, code, reason := r.closing, r.closeCode, r.closeReason
	r.mu.Unlock()
	r.g.setConn(c)
	if closing && c != nil {
		c.fail(ErrClosed, ActionResume, code, reason)
	}
}

// step is one connection attempt of the run, on a goroutine of its own: the
// backoff wait, the dial, the read loop for the connection's whole life, and
// the decision that follows. The next attempt starts on a fresh goroutine
// (the run's goroutines form a chain, one alive at a time), so the long-lived
// read loop never carries a stack grown by an earlier connection's dial or
// logging: an idle shard's memory is mostly stacks and buffers. done closes
// when the chain ends.
func (r *run) step(attempt int) {
	next, over := r.attempt(attempt)
	if over {
		close(r.done)
		return
	}
	go r.step(next)
}

// attempt runs one connection attempt; it returns the next attempt's number
// or reports that the run is over.
func (r *run) attempt(attempt int) (next int, over bool) {
	g := r.g
	if attempt > 0 {
		delay := backoffDelay(attempt-1, g.cfg.ReconnectBackoffMin, g.cfg.ReconnectBackoffMax, defaultRand)
		if ra := retryAfter(r.lastError()); ra > delay {
			delay = ra
			g.log.Warn("reconnecting once the identify limiter allows", slog.Duration("delay", delay))
		}
		g.log.Debug("reconnecting", slog.Duration("delay", delay), slog.Int("attempt", attempt))
		if !sleepCtx(r.ctx, delay) {
			r.end(ErrClosed)
			return 0, true
		}
	}
	res := r.connectOnce()
	if r.ctx.Err() != nil || r.isClosing() {
		r.end(ErrClosed)
		return 0, true
	}
	if res.ready {
		attempt = 0
	}
	return attempt + 1, r.afterFailure(res)
}

// afterFailure applies a failed connection's outcome; it reports whether the
// run is over.
func (r *run) afterFailure(res connResult) bool {
	g := r.g
	r.mu.Lock()
	r.lastErr = res.err
	everReady := r.everReady
	r.mu.Unlock()
	switch res.action {
	case ActionStop:
		if g.cfg.CloseHandler == nil { // else the handler reports it
			g.log.Error("gateway stopped by a fatal close", slog.Any("error", res.err))
		}
		g.setStatus(StatusStopped)
		r.disp.push(dispatchItem{closeErr: res.err, closeReconnect: false})
		r.end(res.err)
		return true
	case ActionReidentify:
		g.clearSession()
	}
	g.setStatus(StatusDisconnected)
	if !g.cfg.AutoReconnect {
		g.log.Warn("gateway disconnected; auto-reconnect is off", slog.Any("error", res.err))
		if everReady {
			r.disp.push(dispatchItem{closeErr: res.err, closeReconnect: true})
		}
		r.end(res.err)
		return true
	}
	g.log.Info("gateway disconnected; reconnecting", slog.Any("error", res.err),
		slog.String("action", res.action.String()))
	return false
}

// end marks the run finished and tells Open why, if Open is still waiting.
func (r *run) end(err error) {
	r.mu.Lock()
	r.finished = true
	r.mu.Unlock()
	r.signalOpened(err)
	r.disp.stop()
}

// connResult is how one connection ended.
type connResult struct {
	err    error
	action CloseAction // what the next connection must do with the session
	ready  bool        // the connection reached READY or RESUMED
}

// connectOnce dials, serves the connection until it ends, and cleans up.
func (r *run) connectOnce() connResult {
	g := r.g
	resume := g.State().Resumable()
	g.setStatus(StatusConnecting)
	ctx, cancel := r.attemptContext()
	u, fromREST, err := g.dialURL(ctx, resume)
	if err != nil {
		cancel()
		return connResult{err: err, action: ActionResume}
	}
	c, err := dialShallow(ctx, cancel, r, u)
	if err != nil {
		cancel()
		if fromREST {
			g.forgetBootstrap()
		}
		if resume {
			// A resume host we cannot reach: RESUME through the bootstrap
			// URL next time rather than retrying a dead host until the
			// session expires.
			g.forgetResumeURL()
		}
		return connResult{err: errOrClosed(r.ctx, err), action: ActionResume}
	}
	r.attach(c)
	res := c.serve(resume)
	r.attach(nil)
	if res.ready {
		r.mu.Lock()
		r.everReady = true
		r.mu.Unlock()
	}
	return res
}

// markReady is called by the connection at READY or RESUMED.
func (r *run) markReady() {
	r.signalOpened(nil)
}

// sleepCtx waits d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

var errHelloTimeout = errors.New("gateway: no HELLO in time")

func helloTimeoutError(d time.Duration) error {
	return fmt.Errorf("%w (%s)", errHelloTimeout, d)
}

func readyTimeoutError(d time.Duration, resume bool) error {
	cmd := "IDENTIFY"
	if resume {
		cmd = "RESUME"
	}
	return fmt.Errorf("%w (%s after %s)", ErrReadyTimeout, d, cmd)
}

// dialShallow dials on a short-lived goroutine it waits for, so the HTTP
// handshake's deep call chains do not grow the stack of the goroutine that
// then sits in the read loop.
func dialShallow(ctx context.Context, cancel context.CancelFunc, r *run, u string) (*connection, error) {
	type result struct {
		c   *connection
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := dial(ctx, cancel, r, u)
		ch <- result{c, err}
	}()
	res := <-ch
	return res.c, res.err
}
