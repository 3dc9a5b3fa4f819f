package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// gatewayImpl is the Gateway New returns.
//
// Locks: lifecycle serializes Open/Close/Handoff bookkeeping and is never
// held while waiting for goroutines or the network; mu guards the fields
// below it and is only held for field access.
type gatewayImpl struct {
	token   string
	handler EventHandlerFunc
	cfg     Config
	cfgErr  error
	log     *slog.Logger
	limiter IdentifyLimiter

	lifecycle sync.Mutex
	run       *run        // the current Open..Close span, or nil
	lastDisp  *dispatcher // the latest run's dispatcher, so the next one waits for it

	mu     sync.Mutex
	status Status
	state  ShardState
	hasSeq bool
	// unreadable counts consecutive unreadable messages (frames.go); a
	// uint8 (UnreadableRetries is at most 10) in hasSeq's padding keeps
	// gatewayImpl in the 512-byte size class.
	unreadable uint8
	seq        seqGuard // refused jumps and where unreadable counts (frames.go)
	latency    time.Duration
	bootstrap  string      // gateway URL learned from GET {APIURL}/gateway
	conn       *connection // the live connection, for Send
}

var _ Gateway = (*gatewayImpl)(nil)

// New builds a shard's connection; it does not connect (see Open). The
// configuration is validated here once; since New cannot return an error,
// an invalid configuration makes every Open return a *ConfigError naming
// the field. token is used only in IDENTIFY and RESUME, never logged.
func New(token string, eventHandlerFunc EventHandlerFunc, opts ...ConfigOpt) Gateway {
	cfg := DefaultConfig()
	cfg.Apply(opts)
	g := &gatewayImpl{token: token, handler: eventHandlerFunc, cfg: *cfg}
	g.cfgErr = g.cfg.validate(token)
	logger := g.cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	g.log = newShardLogger(logger, g.cfg.ShardID, g.cfg.ShardCount)
	g.limiter = g.cfg.IdentifyLimiter
	if g.limiter == nil {
		g.limiter = noopLimiter{}
	}
	g.cfg.State = sanitizeState(g.cfg.State, g.cfg.Compression, g.log)
	g.state = g.cfg.State
	g.hasSeq = g.cfg.State.Resumable()
	return g
}

// noopLimiter is the IdentifyLimiter when none is configured.
type noopLimiter struct{}

func (noopLimiter) WaitBucket(context.Context, int) error { return nil }
func (noopLimiter) UnlockBucket(int)                      {}

var _ IdentifyLimiter = noopLimiter{}

func (g *gatewayImpl) ShardID() int     { return g.cfg.ShardID }
func (g *gatewayImpl) ShardCount() int  { return g.cfg.ShardCount }
func (g *gatewayImpl) Intents() Intents { return g.cfg.Intents }

func (g *gatewayImpl) SessionID() *string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state.SessionID == "" {
		return nil
	}
	s := g.state.SessionID
	return &s
}

func (g *gatewayImpl) LastSequenceReceived() *int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.hasSeq {
		return nil
	}
	s := g.state.Sequence
	return &s
}

func (g *gatewayImpl) ResumeURL() *string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state.ResumeURL == "" {
		return nil
	}
	s := g.state.ResumeURL
	return &s
}

func (g *gatewayImpl) State() ShardState {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state
}

func (g *gatewayImpl) Status() Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.status
}

func (g *gatewayImpl) Latency() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.latency
}

func (g *gatewayImpl) setStatus(s Status) {
	g.mu.Lock()
	g.status = s
	g.mu.Unlock()
}

// casStatus sets the status to to if it is from.
func (g *gatewayImpl) casStatus(from, to Status) {
	g.mu.Lock()
	if g.status == from {
		g.status = to
	}
	g.mu.Unlock()
}

func (g *gatewayImpl) setLatency(d time.Duration) {
	g.mu.Lock()
	g.latency = d
	g.mu.Unlock()
}

// onReady records a new session from READY.
func (g *gatewayImpl) onReady(seq int, sessionID, resumeURL string) {
	g.mu.Lock()
	g.state = ShardState{SessionID: sessionID, Sequence: seq, ResumeURL: resumeURL}
	g.hasSeq = true
	g.seq, g.unreadable = seqGuard{}, 0 // a new session numbers afresh
	g.status = StatusReady
	g.mu.Unlock()
}

// forgetResumeURL drops the session's resume URL (the session is kept).
func (g *gatewayImpl) forgetResumeURL() {
	g.mu.Lock()
	g.state.ResumeURL = ""
	g.mu.Unlock()
}

// markDisconnected sets StatusDisconnected unless the shard stopped for good.
func (g *gatewayImpl) markDisconnected() {
	g.mu.Lock()
	if g.status != StatusStopped {
		g.status = StatusDisconnected
	}
	g.mu.Unlock()
}

// clearSession forgets the session: the next connection IDENTIFYs.
func (g *gatewayImpl) clearSession() {
	g.mu.Lock()
	g.state, g.hasSeq = ShardState{}, false
	g.mu.Unlock()
}

func (g *gatewayImpl) setConn(c *connection) {
	g.mu.Lock()
	g.conn = c
	g.mu.Unlock()
}

// Open connects and waits for READY or RESUMED; see Gateway.Open.
func (g *gatewayImpl) Open(ctx context.Context) error {
	if g.cfgErr != nil {
		return fmt.Errorf("open: %w", g.cfgErr)
	}
	r, err := g.startRun(ctx)
	if err != nil {
		return err
	}
	select {
	case err := <-r.opened:
		// The one value has been taken (signalOpened sends once): the
		// channel is dead weight for the rest of the run.
		r.opened = nil
		if err == nil {
			return nil
		}
		g.reap(ctx, r)
		g.markDisconnected()
		return fmt.Errorf("open: %w", err)
	case <-ctx.Done():
		last := r.lastError()
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.CloseTimeout)
		defer cancel()
		g.lifecycle.Lock()
		if g.run == r {
			g.run = nil
		}
		g.lifecycle.Unlock()
		g.stopRun(cleanup, r, CloseCodeReconnect, "open abandoned")
		g.markDisconnected()
		if last != nil {
			return fmt.Errorf("open: %w; last attempt: %w", ctx.Err(), last)
		}
		return fmt.Errorf("open: %w", ctx.Err())
	}
}

// startRun starts a new run unless one is active. A run that ended on its
// own (fatal close, or AutoReconnect off) is reaped first.
func (g *gatewayImpl) startRun(ctx context.Context) (*run, error) {
	g.lifecycle.Lock()
	old := g.run
	if old != nil && !old.isFinished() {
		g.lifecycle.Unlock()
		return nil, ErrAlreadyOpen
	}
	g.run = nil
	r := newRun(g, g.lastDisp)
	g.run, g.lastDisp = r, r.disp
	g.lifecycle.Unlock()
	if old != nil {
		<-old.done // finished: its loop has returned or is returning
	}
	go r.step(0)
	return r, nil
}

// reap forgets a run that ended on its own and waits for its goroutines.
func (g *gatewayImpl) reap(ctx context.Context, r *run) {
	g.lifecycle.Lock()
	if g.run == r {
		g.run = nil
	}
	g.lifecycle.Unlock()
	<-r.done
	r.disp.wait(ctx)
}

func (g *gatewayImpl) Close(ctx context.Context) {
	g.CloseWithCode(ctx, CloseCodeNormal, "")
}

// CloseWithCode closes with code; 1000 and 1001 end the session, any other
// code keeps it resumable. It waits, bounded by ctx, for the connection's
// goroutines and for the handler to finish what was already received.
func (g *gatewayImpl) CloseWithCode(ctx context.Context, code int, reason string) {
	g.lifecycle.Lock()
	r := g.run
	g.run = nil
	disp := g.lastDisp
	g.lifecycle.Unlock()
	if r != nil {
		g.stopRun(ctx, r, code, reason)
	}
	if disp != nil {
		// A dispatcher left running by a Handoff or Open that gave up waiting:
		// Close is the last chance to wait for it.
		disp.wait(ctx)
	}
	if code == CloseCodeNormal || code == CloseCodeGoingAway {
		g.clearSession()
	}
	g.markDisconnected()
}

// Handoff closes with CloseCodeHandoff and returns the state to RESUME from.
// If the handler has not finished the events already received when ctx ends
// (or a callback is running), the returned Sequence is that of the last
// event the handler finished, so the next owner's RESUME replays the rest:
// nothing is lost, at worst an event is delivered twice. The gateway keeps
// that Sequence too, for an Open of the same gateway to RESUME from.
func (g *gatewayImpl) Handoff(ctx context.Context) ShardState {
	g.lifecycle.Lock()
	r := g.run
	g.run = nil
	g.lifecycle.Unlock()
	drained := true
	var delivered int64
	if r != nil {
		drained = g.stopRun(ctx, r, CloseCodeHandoff, "handoff")
		delivered = r.disp.deliveredTo.Load()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.status != StatusStopped {
		g.status = StatusDisconnected
	}
	if !drained && int64(g.state.Sequence) > delivered {
		// The events after it were dropped unhandled: a RESUME from the
		// last one received would skip them.
		g.state.Sequence = int(delivered)
	}
	return g.state
}

// stopRun closes r's connection with code and waits for its goroutines and
// its dispatcher, bounded by ctx. It reports whether every received event
// was delivered.
func (g *gatewayImpl) stopRun(ctx context.Context, r *run, code int, reason string) bool {
	r.requestClose(code, reason)
	select {
	case <-r.done:
	case <-ctx.Done():
	}
	r.stop() // forces whatever is still in progress to give up now
	<-r.done
	return r.disp.wait(ctx)
}

// Send writes one command; see Gateway.Send.
func (g *gatewayImpl) Send(ctx context.Context, op Opcode, data any) error {
	_, err := g.send(ctx, op, data)
	return err
}

// send writes one command on the current connection and returns it.
func (g *gatewayImpl) send(ctx context.Context, op Opcode, data any) (*connection, error) {
	g.mu.Lock()
	status, c := g.status, g.conn
	g.mu.Unlock()
	if status != StatusReady || c == nil {
		return nil, fmt.Errorf("send op %d: %w", op, ErrNotReady)
	}
	payload, err := json.Marshal(outgoing{Op: op, D: data})
	if err != nil {
		return nil, fmt.Errorf("send op %d: encode: %w", op, err)
	}
	if err := c.write(ctx, payload, false); err != nil {
		return nil, fmt.Errorf("send op %d: %w", op, err)
	}
	return c, nil
}

// outgoing is a message the client sends.
type outgoing struct {
	Op Opcode `json:"op"`
	D  any    `json:"d"`
}

// errOrClosed maps a cancelled run to ErrClosed.
func errOrClosed(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}
