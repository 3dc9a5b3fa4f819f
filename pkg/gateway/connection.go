package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// connection is one websocket to Discord. Its goroutines: the read loop
// (serve, on the run's goroutine), the handshake goroutine (waits for HELLO,
// takes the identify permit, sends IDENTIFY or RESUME), heartbeat timer
// callbacks, and a closer started by fail. serve waits for all of them.
type connection struct {
	g   *gatewayImpl
	run *run
	ws  *websocket.Conn
	tr  transport
	lim *sendLimiter
	hb  heartbeater
	// confirm counts what Discord has read of Send's commands (confirm.go).
	confirm confirmations

	// readCtx bounds every blocking call of the connection; cancelling it
	// tears the websocket down at once. It is the attempt's context, which
	// the run cancels when it stops.
	readCtx    context.Context
	cancelRead context.CancelFunc

	// hello and readySig (cap 1) tell the handshake goroutine that HELLO,
	// then READY or RESUMED, arrived. The read loop sends through signal;
	// the handshake goroutine clears both under mu when it ends, so a
	// connection past its handshake keeps neither.
	// sock is the TCP socket under ws when the dial could wrap it
	// (socketClient); nil otherwise. stopCut unregisters the close of sock
	// when readCtx ends.
	sock    *socket
	stopCut func() bool

	hello    chan struct{}
	readySig chan struct{}
	ready    bool // READY/RESUMED seen; read loop only
	// sawDispatch: an ordinary dispatch came after READY/RESUMED (the
	// replay is over); read loop only.
	sawDispatch bool
	wg          sync.WaitGroup

	mu     sync.Mutex
	cause  error // why the client ends this connection; first one wins
	action CloseAction
	ended  bool // serve is tearing down: no new goroutines
}

// dial opens the websocket. ctx and cancel are the attempt's (see
// run.attemptContext): ctx bounds the dial, then becomes the connection's
// readCtx.
func dial(ctx context.Context, cancel context.CancelFunc, r *run, u string) (*connection, error) {
	g := r.g
	dctx, cancelDial := context.WithTimeout(ctx, g.cfg.HelloTimeout)
	defer cancelDial()
	var sock atomic.Pointer[socket]
	ws, resp, err := websocket.Dial(dctx, u, &websocket.DialOptions{
		HTTPClient: socketClient(g.cfg.HTTPClient, &sock),
		HTTPHeader: http.Header{"User-Agent": {UserAgent}},
	})
	if err != nil {
		if resp != nil && resp.Body != nil {
			_ = resp.Body.Close()
		}
		return nil, fmt.Errorf("dial gateway %s: %w", redactURL(u), err)
	}
	ws.SetReadLimit(g.cfg.ReadLimit)
	c := newConnection(ctx, cancel, r, ws, newTransport(g.cfg.Compression, g.cfg.ReadLimit))
	c.sock = sock.Load()
	if c.sock != nil {
		c.sock.flush = r.disp.flush
		c.watchIdle()
		c.stopCut = context.AfterFunc(ctx, func() { _ = c.sock.Close() })
	}
	g.setStatus(StatusWaitingForHello)
	return c, nil
}

func newConnection(ctx context.Context, cancel context.CancelFunc, r *run, ws *websocket.Conn, tr transport) *connection {
	g := r.g
	c := &connection{g: g, run: r, ws: ws, tr: tr, readCtx: ctx, cancelRead: cancel,
		lim:   newSendLimiter(g.cfg.CommandsPerWindow, g.cfg.ReservedCommands, g.cfg.CommandWindow),
		hello: make(chan struct{}, 1), readySig: make(chan struct{}, 1)}
	c.hb.c = c
	return c
}

// serve runs the connection until it ends and reports how.
func (c *connection) serve(resume bool) connResult {
	c.wg.Add(1)
	go c.handshake(resume)
	readErr := c.readLoop()
	c.run.disp.flush()
	if c.stopCut != nil {
		c.stopCut()
	}
	c.mu.Lock()
	c.ended = true
	c.mu.Unlock()
	c.cancelRead()
	c.hb.stop()
	c.wg.Wait()
	_ = c.ws.CloseNow()
	c.tr.close()
	err, action := c.result(readErr)
	if isUnreadable(err) {
		action = c.g.afterUnreadable(action)
	}
	return connResult{err: err, action: action, ready: c.ready}
}

// readLoop reads messages until the websocket fails. After c.fail it keeps
// reading (and discarding) so the close handshake can complete.
func (c *connection) readLoop() error {
	// With the socket at hand, cancelling readCtx closes it (see dial), so
	// reads need no cancellable context: coder/websocket would register and
	// remove a context.AfterFunc on it twice per message.
	readCtx := c.readCtx
	if c.sock != nil {
		readCtx = context.WithoutCancel(readCtx)
	}
	for {
		typ, rd, err := c.ws.Reader(readCtx)
		if err != nil {
			return err
		}
		fb := framePool.get()
		frame, err := readMessage(rd, *fb)
		*fb = frame[:0]
		if err != nil {
			framePool.put(fb)
			return err
		}
		c.hb.received.Store(true)
		if !c.failed() {
			if err := c.processFrame(typ == websocket.MessageBinary, frame); err != nil {
				c.fail(fmt.Errorf("%w: %w", errUnreadable, err), ActionResume, CloseCodeProtocolError, "undecodable message")
			}
		}
		framePool.put(fb)
	}
}

// processFrame decodes one websocket message and handles the gateway message
// it completes, if any. It is the whole per-message path of the read loop.
func (c *connection) processFrame(binary bool, frame []byte) error {
	msg, err := c.tr.decode(binary, frame)
	if err != nil || msg == nil {
		return err
	}
	err = c.handleMessage(msg)
	c.tr.release()
	return err
}

// readMessage reads one websocket message into buf, growing it as needed.
func readMessage(rd io.Reader, buf []byte) ([]byte, error) {
	for {
		if cap(buf)-len(buf) < 512 {
			buf = append(buf[:cap(buf)], make([]byte, cap(buf))...)[:len(buf)]
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// signal wakes the handshake goroutine through *ch (c.hello or c.readySig)
// if it still waits; a signal already pending, or a handshake over, makes it
// a no-op.
func (c *connection) signal(ch *chan struct{}) {
	c.mu.Lock()
	s := *ch
	c.mu.Unlock()
	select {
	case s <- struct{}{}:
	default:
	}
}

func (c *connection) failed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cause != nil
}

// fail ends the connection from the client side: it records why (the first
// cause wins) and closes the websocket with code on a goroutine it owns, so
// callers (read loop, heartbeat, owner) never block on the close handshake.
func (c *connection) fail(cause error, action CloseAction, code int, reason string) {
	c.mu.Lock()
	if c.cause != nil {
		c.mu.Unlock()
		return
	}
	c.cause, c.action = cause, action
	ended := c.ended
	if !ended {
		c.wg.Add(1)
	}
	c.mu.Unlock()
	if ended {
		return
	}
	if !errors.Is(cause, ErrClosed) {
		c.g.log.Warn("closing gateway connection", slog.Int("code", code), slog.Any("error", cause))
	}
	go func() {
		defer c.wg.Done()
		// A peer that never answers the close frame is cut off after CloseTimeout.
		t := time.AfterFunc(c.g.cfg.CloseTimeout, c.cancelRead)
		defer t.Stop()
		_ = c.ws.Close(websocket.StatusCode(code), reason)
		c.cancelRead()
	}()
}

// result turns how the read loop ended into an error and an action.
func (c *connection) result(readErr error) (error, CloseAction) {
	c.mu.Lock()
	cause, action := c.cause, c.action
	c.mu.Unlock()
	var wce websocket.CloseError
	if errors.As(readErr, &wce) {
		// The peer's close frame is the truer reason when the client's own
		// cause is only a write that failed because that close tore the
		// socket down (a heartbeat racing the close), and always when the
		// code is fatal: a 4004 must stop the shard, not be RESUMEd over.
		ce := &CloseError{Code: int(wce.Code), Reason: wce.Reason}
		if cause == nil || errors.Is(cause, errWriteFailed) || ce.Action() == ActionStop {
			return ce, ce.Action()
		}
	}
	if cause != nil {
		return cause, action
	}
	if c.run.ctx.Err() != nil {
		return ErrClosed, ActionResume
	}
	return fmt.Errorf("read: %w", readErr), ActionResume
}

// write sends one command through the send limiter. internal commands
// (heartbeat, identify, resume) may use the reserved slots.
func (c *connection) write(ctx context.Context, payload []byte, internal bool) error {
	if len(payload) > MaxPayloadSize {
		return fmt.Errorf("%w (%d bytes)", ErrPayloadTooLarge, len(payload))
	}
	if err := c.lim.wait(ctx, internal); err != nil {
		return err
	}
	return c.writeFrame(payload)
}

// writeFrame writes one message, its send slot taken.
func (c *connection) writeFrame(payload []byte) error {
	// The write itself is bounded by the connection, not by the caller's ctx:
	// coder/websocket tears the connection down when a write's ctx ends, and a
	// caller giving up on one Send must not cost the shard its connection.
	// CloseTimeout bounds it with a timer that cuts the socket, as
	// coder/websocket would on a deadline, rather than with a ctx of the
	// write's own: coder/websocket keeps the last write's ctx until the next
	// write, and a shard's last write is usually a heartbeat 41 s ago.
	var timedOut atomic.Bool
	cut := time.AfterFunc(c.g.cfg.CloseTimeout, func() {
		timedOut.Store(true)
		_ = c.ws.CloseNow()
	})
	err := c.ws.Write(c.readCtx, websocket.MessageText, payload)
	cut.Stop()
	if err != nil {
		if timedOut.Load() {
			err = fmt.Errorf("%w after %s: %w", context.DeadlineExceeded, c.g.cfg.CloseTimeout, err)
		}
		return fmt.Errorf("%w: %w", errWriteFailed, err)
	}
	return nil
}

// socket is a connection's TCP socket, wrapped so that the read loop learns
// when a read may block: before every read of the socket (the websocket's
// buffer is empty) it wakes the dispatcher for the events queued since the
// last read (dispatcher.pushDeferred). Reads of the socket come from the read
// loop, or from coder/websocket's close handshake on the closing goroutine;
// flush is safe from either.
//
// It also reads ahead: coder/websocket reads through a 4 KiB buffer, a
// system call (and so a dispatcher wake-up) per four or five 900-byte
// dispatches. After a read that filled the caller's buffer, when more is
// likely waiting, it takes what the kernel has at once, without blocking,
// into a pooled buffer, and serves the next reads from it. The buffer goes
// back to the pool once used up: an idle connection holds none.
type socket struct {
	net.Conn
	flush func() // set once the connection exists, before the read loop runs

	ahead    *[]byte // read ahead and not yet served (from aheadPool); nil when none
	aheadOff int
	aheadErr error // what the read ahead ended with, for the next Read

	idleWatch // releases the transport of a quiet connection (zlib_idle.go)
}

// aheadPool holds read-ahead buffers.
var aheadPool = bufPool{size: 64 << 10, maxKeep: 64 << 10}

func (s *socket) Read(p []byte) (int, error) {
	if s.ahead != nil {
		n := copy(p, (*s.ahead)[s.aheadOff:])
		if s.aheadOff += n; s.aheadOff == len(*s.ahead) {
			aheadPool.put(s.ahead)
			s.ahead, s.aheadOff = nil, 0
		}
		return n, nil
	}
	if err := s.aheadErr; err != nil {
		s.aheadErr = nil
		return 0, err
	}
	if s.flush != nil {
		s.flush() // this read may block
	}
	n, err := s.readConn(p)
	if err == nil && n == len(p) {
		s.readAhead()
	}
	return n, err
}

// readAhead takes what the kernel holds for the socket, without waiting.
func (s *socket) readAhead() {
	sc, ok := s.Conn.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	buf := aheadPool.get()
	b := (*buf)[:cap(*buf)]
	var n int
	var rerr error
	err = raw.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), b)
		return true // one attempt: never wait here
	})
	switch {
	case err == nil && rerr == nil && n > 0:
		*buf = b[:n]
		s.ahead = buf
		return
	case err == nil && rerr == nil:
		s.aheadErr = io.EOF
	case err == nil && rerr != syscall.EAGAIN:
		s.aheadErr = rerr
	}
	aheadPool.put(buf)
}

// socketClient returns a copy of client whose transport dials through a
// socket stored in sock, when client's transport is an *http.Transport that
// dials TCP itself; otherwise client itself, and the connection reads with a
// cancellable context and wakes the dispatcher per event, as it must without
// the socket.
func socketClient(client *http.Client, sock *atomic.Pointer[socket]) *http.Client {
	rt := client.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	t, ok := rt.(*http.Transport)
	if !ok || t.DialTLSContext != nil || t.DialTLS != nil || t.Dial != nil { //nolint:staticcheck // a Dial set by the user must keep working
		return client
	}
	t = t.Clone()
	// The connection is hijacked, never reused; kept alive, the clone's pool
	// held its HTTP buffers (8 KiB) and the clone itself for the shard's life
	// (heap profile of internal/worker's BenchmarkIdleShardHeap).
	t.DisableKeepAlives = true
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		s := &socket{Conn: conn}
		sock.Store(s)
		return s, nil
	}
	cc := *client
	cc.Transport = t
	return &cc
}
