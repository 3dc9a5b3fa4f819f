package gatewaytest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// readLimit is coder/websocket's limit; anything between 4097 bytes and this
// gets Discord's 4002 from our own check, anything larger 1009 from the library.
const readLimit = 1 << 20

// encoderIdle: a connection that sent nothing for this long gives its
// compressor state back (see transportEncoder.release).
const encoderIdle = 100 * time.Millisecond

// scratchKeep: a writer's frame buffer grown beyond this (by READY, say) is
// dropped after its batch.
const scratchKeep = 16 << 10

type outKind uint8

const (
	outPayload outKind = iota // JSON, encoded per the connection's compression
	outRaw                    // bytes as they are (garbage injection)
	outClose                  // close frame with code and reason
	outDrop                   // TCP drop, no close frame
)

// outMsg is one queued message for a connection's writer. A dispatch is
// data (its envelope head) + body (its d, shared between sessions) + "}".
type outMsg struct {
	kind   outKind
	data   []byte
	body   []byte
	binary bool // outRaw: binary frame
	large  bool // outPayload: zlib it on its own when IDENTIFY asked compress:true
	code   int
	reason string
}

// conn is one websocket. Its handler goroutine reads; one writer goroutine,
// owned by the handler, writes everything queued (so a producer never blocks
// on a slow client while holding Server.mu).
type conn struct {
	srv         *Server
	ws          *websocket.Conn
	cork        *corkConn
	id          uint64
	path        string
	version     int
	compression gateway.Compression
	logp        atomic.Pointer[slog.Logger] // conn_id and path; shard_id and session_id once it has a session

	qmu      sync.Mutex
	qcond    *sync.Cond // signalled when the queue drains or the writer ends
	queue    []outMsg
	closing  bool // a close or drop is queued or sent: nothing more is queued
	finished bool // the writer has exited

	wake       chan struct{}
	quit       chan struct{}
	quitOnce   sync.Once
	writerDone chan struct{}

	lastBeat     atomic.Int64  // Server.now() of the last heartbeat (or HELLO)
	serverCode   atomic.Int32  // close code the fake sent; -1: it dropped TCP; 0: none
	retractClose atomic.Uint64 // the fake's close record connGone replaces with the client's, which came first; 0: none
	payloadZlib  atomic.Bool   // IDENTIFY compress:true (and no transport compression)

	sess *session // guarded by Server.mu: the attached session

	scratch []byte // writer only: a dispatch's frame, assembled

	sendTimes []int64 // reader only: arrival of the last SendLimit payloads (ring)
	sendIdx   int
	sendCount int
}

func newConn(s *Server, ws *websocket.Conn, cork *corkConn, path string) *conn {
	c := &conn{srv: s, ws: ws, cork: cork, path: path, id: s.nextConnID.Add(1),
		wake: make(chan struct{}, 1), quit: make(chan struct{}), writerDone: make(chan struct{})}
	c.qcond = sync.NewCond(&c.qmu)
	c.logp.Store(s.log.With("conn_id", c.id, "path", path))
	return c
}

func (c *conn) log() *slog.Logger { return c.logp.Load() }

// setSessionLog attaches the session's shard_id and session_id to the
// connection's logs (once per session).
func (c *conn) setSessionLog(ss *session) {
	c.logp.Store(c.srv.log.With("conn_id", c.id, "path", c.path, "shard_id", ss.shardID, "session_id", ss.id))
}

// parseQuery applies the connect URL's v, encoding and compress (§3).
func (c *conn) parseQuery(q url.Values) *ProtocolError {
	switch q.Get("v") {
	case "9":
		c.version = 9
	case "10":
		c.version = 10
	default:
		return protoErr(gateway.CloseInvalidAPIVersion, "invalid API version")
	}
	if enc := q.Get("encoding"); enc != "" && enc != "json" {
		return protoErr(gateway.CloseDecodeError, "invalid encoding: only json is served")
	}
	switch cmp := gateway.Compression(q.Get("compress")); cmp {
	case gateway.CompressionNone, gateway.CompressionZlibStream, gateway.CompressionZstdStream:
		c.compression = cmp
	default:
		return protoErr(gateway.CloseDecodeError, "invalid compress")
	}
	return nil
}

// enqueue queues m for the writer; false when the connection is closing.
func (c *conn) enqueue(m outMsg) bool { return c.enqueueLen(m) > 0 }

// enqueueLen queues m and returns the queue's length after it, 0 when the
// connection is closing (nothing queued).
func (c *conn) enqueueLen(m outMsg) int {
	c.qmu.Lock()
	if c.closing || c.finished {
		c.qmu.Unlock()
		return 0
	}
	if m.kind == outClose || m.kind == outDrop {
		c.closing = true
	}
	c.queue = append(c.queue, m)
	n := len(c.queue)
	c.qmu.Unlock()
	if n == 1 {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	return n
}

func (c *conn) send(frame []byte) bool { return c.enqueue(outMsg{kind: outPayload, data: frame}) }

// waitDrained blocks until the queue is at most low messages long or the
// writer has exited. Callers must hold no Server lock.
func (c *conn) waitDrained(low int) {
	c.qmu.Lock()
	for len(c.queue) > low && !c.finished {
		c.qcond.Wait()
	}
	c.qmu.Unlock()
}

// stopWriter asks the writer to exit and waits for it.
func (c *conn) stopWriter() {
	c.quitOnce.Do(func() { close(c.quit) })
	<-c.writerDone
}

// serve runs the connection on the handler goroutine: it starts the writer,
// sends HELLO, reads until the connection ends, then tears everything down.
func (c *conn) serve() {
	c.lastBeat.Store(c.srv.now())
	go c.writeLoop()
	c.send(helloFrame(c.srv.cfg.HeartbeatInterval))
	perr, clientCode := c.readLoop()
	if perr != nil {
		// Reader-initiated close: nothing more is written, then the close handshake.
		c.qmu.Lock()
		c.closing = true
		c.qmu.Unlock()
		c.serverCode.Store(int32(perr.Code))
	}
	c.stopWriter()
	if perr != nil {
		c.log().Debug("closing connection", "code", perr.Code, "reason", perr.Reason)
		c.srv.recordServerClose(c, perr.Code, perr.Reason)
		_ = c.ws.Close(websocket.StatusCode(perr.Code), perr.Reason)
	}
	_ = c.ws.CloseNow()
	c.srv.connGone(c, clientCode)
}

// readLoop reads client payloads until the connection ends. It returns the
// protocol error the fake closes with, or the client's close code (-1: the
// connection dropped without one, or the client only echoed the fake's close).
func (c *conn) readLoop() (*ProtocolError, int) {
	for {
		_, b, err := c.ws.Read(context.Background())
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return nil, clientClose(int(ce.Code), int(c.serverCode.Load()))
			}
			return nil, -1
		}
		if perr := c.countSend(); perr != nil {
			return perr, -1
		}
		frame, perr := decodeClientPayload(b)
		if perr == nil {
			perr = c.handle(frame)
		}
		if perr != nil {
			return perr, -1
		}
	}
}

// clientClose is the code of a close frame the client sent, given the close
// the fake sent on that connection (serverCode: 0 none, -1 a TCP drop), or
// -1 if the frame is the client's echo of the fake's close. A frame with
// another code is the client's own close, sent before the fake's reached it:
// a client echoes the code it received and sends no echo once it has sent a
// close. Whether the fake had decided on a close when the reader looks does
// not tell: the reader echoes the client's close before it returns, so by
// then the client may already have RESUMEd on a new connection, whose
// takeover closes this one with 4009 (closeLocked then finds the connection
// closing and takes its record back).
func clientClose(code, serverCode int) int {
	if serverCode != 0 && code == serverCode {
		return -1
	}
	return code
}

// countSend enforces SendLimit payloads per SendWindow over a sliding window
// (stricter than a fixed one: any SendWindow-long span holds at most SendLimit).
func (c *conn) countSend() *ProtocolError {
	cfg := &c.srv.cfg
	if c.sendTimes == nil {
		c.sendTimes = make([]int64, cfg.SendLimit)
	}
	now := c.srv.now()
	if c.sendCount >= cfg.SendLimit && now-c.sendTimes[c.sendIdx] < int64(cfg.SendWindow) {
		return protoErr(gateway.CloseRateLimited, "you are being rate limited")
	}
	c.sendTimes[c.sendIdx] = now
	c.sendIdx = (c.sendIdx + 1) % cfg.SendLimit
	c.sendCount++
	return nil
}

// handle runs one opcode's handler.
func (c *conn) handle(f clientFrame) *ProtocolError {
	switch f.Op {
	case gateway.OpHeartbeat:
		return c.handleHeartbeat(f.D)
	case gateway.OpIdentify:
		return c.srv.handleIdentify(c, f.D)
	case gateway.OpResume:
		return c.srv.handleResume(c, f.D)
	}
	return c.srv.handleCommand(c, f)
}

func (c *conn) handleHeartbeat(d []byte) *ProtocolError {
	if perr := checkHeartbeatData(d); perr != nil {
		return perr
	}
	c.lastBeat.Store(c.srv.now())
	if c.srv.ackHeartbeats.Load() {
		c.send(frameHeartbeatACK)
	}
	return nil
}

// writeLoop is the connection's writer goroutine; it also closes a client
// that stops heartbeating.
func (c *conn) writeLoop() {
	defer c.finishWriter()
	enc, err := newTransportEncoder(c.compression)
	if err != nil {
		c.log().Error("transport compression", "err", err)
		_ = c.ws.CloseNow()
		return
	}
	if enc != nil {
		defer enc.close()
	}
	hb := time.NewTimer(c.srv.cfg.HeartbeatTimeout)
	defer hb.Stop()
	idle := time.NewTimer(encoderIdle)
	defer idle.Stop()
	var batch []outMsg
	for {
		if cap(c.scratch) > scratchKeep {
			c.scratch = nil
		}
		select {
		case <-c.quit:
			return
		case <-idle.C:
			if enc != nil {
				enc.release()
			}
			continue
		case <-hb.C:
			idle := time.Duration(c.srv.now() - c.lastBeat.Load())
			if idle >= c.srv.cfg.HeartbeatTimeout {
				c.closeLocked(c.srv.cfg.HeartbeatTimeoutCode, "heartbeat timeout")
				return
			}
			hb.Reset(c.srv.cfg.HeartbeatTimeout - idle)
			continue
		case <-c.wake:
		}
		c.qmu.Lock()
		batch, c.queue = c.queue, batch[:0]
		c.qcond.Broadcast()
		c.qmu.Unlock()
		ok := c.writeBatch(enc, batch)
		clear(batch)
		if !ok {
			return
		}
		if enc != nil {
			idle.Reset(encoderIdle)
		}
	}
}

func (c *conn) finishWriter() {
	c.qmu.Lock()
	c.finished = true
	c.queue = nil
	c.qcond.Broadcast()
	c.qmu.Unlock()
	close(c.writerDone)
}

// closeLocked marks the connection closing and sends a close frame (writer only).
func (c *conn) closeLocked(code int, reason string) {
	c.qmu.Lock()
	c.closing = true
	c.qmu.Unlock()
	c.serverCode.Store(int32(code))
	id := c.srv.recordServerClose(c, code, reason)
	c.log().Debug("closing connection", "code", code, "reason", reason)
	if err := c.ws.Close(websocket.StatusCode(code), reason); clientClosedFirst(err, code) &&
		c.serverCode.CompareAndSwap(int32(code), 0) {
		// One close per connection, the one that came first: connGone
		// replaces this record with the client's, in one step, so that
		// the record never lacks this connection's close.
		c.retractClose.Store(id)
	}
}

// clientClosedFirst reports whether closing with code returned err because
// the client's close had come first: the connection was already closing (the
// reader had read the client's close frame and echoed it, so this one was
// never sent), or the handshake read a close with another code than the
// echo of this one. A RESUME on a new connection makes the fake close the
// old one with 4009, often just after the client closed it itself.
func clientClosedFirst(err error, code int) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, net.ErrClosed) {
		return true
	}
	st := websocket.CloseStatus(err)
	return st != -1 && int(st) != code
}

// writeBatch writes msgs in order; false when the connection is done.
func (c *conn) writeBatch(enc transportEncoder, msgs []outMsg) bool {
	ctx, cancel := context.WithTimeout(context.Background(), c.srv.cfg.WriteTimeout)
	defer cancel()
	c.cork.cork()
	for i := range msgs {
		m := &msgs[i]
		var err error
		switch m.kind {
		case outPayload:
			err = c.writePayload(ctx, enc, m)
		case outRaw:
			typ := websocket.MessageText
			if m.binary {
				typ = websocket.MessageBinary
			}
			err = c.ws.Write(ctx, typ, m.data)
		case outClose:
			if err := c.cork.uncork(); err != nil {
				_ = c.ws.CloseNow()
				return false
			}
			c.closeLocked(m.code, m.reason)
			return false
		case outDrop:
			c.serverCode.Store(-1)
			c.srv.recordServerClose(c, int(websocket.StatusAbnormalClosure), "TCP drop")
			_ = c.ws.CloseNow()
			return false
		}
		if err != nil {
			c.log().Debug("write failed; dropping connection", "err", err)
			_ = c.ws.CloseNow()
			return false
		}
	}
	if err := c.cork.uncork(); err != nil {
		c.log().Debug("write failed; dropping connection", "err", err)
		_ = c.ws.CloseNow()
		return false
	}
	return true
}

// frame returns m's complete JSON payload (valid until the next call).
func (c *conn) frame(m *outMsg) []byte {
	if m.body == nil {
		return m.data
	}
	c.scratch = append(append(append(c.scratch[:0], m.data...), m.body...), '}')
	return c.scratch
}

func (c *conn) writePayload(ctx context.Context, enc transportEncoder, m *outMsg) error {
	switch {
	case enc != nil:
		var b []byte
		var err error
		if z, ok := enc.(*zlibStream); ok && len(m.body) >= spliceMin {
			b = z.encodeSpliced(m.data, m.body, c.srv.deflated)
		} else {
			b, err = enc.encode(c.frame(m))
		}
		if err != nil {
			return err
		}
		n := int(c.srv.splitFrames.Load())
		if c.compression != gateway.CompressionZlibStream || n <= 1 {
			return c.ws.Write(ctx, websocket.MessageBinary, b)
		}
		for _, part := range splitMessage(b, n) {
			if err := c.ws.Write(ctx, websocket.MessageBinary, part); err != nil {
				return err
			}
		}
		return nil
	case m.large && c.payloadZlib.Load():
		b, err := compressPayload(c.frame(m))
		if err != nil {
			return err
		}
		return c.ws.Write(ctx, websocket.MessageBinary, b)
	}
	return c.ws.Write(ctx, websocket.MessageText, c.frame(m))
}
