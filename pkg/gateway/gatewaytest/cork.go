package gatewaytest

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// corkFlushSize: a corked buffer this large is written at once, so a long
// batch does not hold everything back.
const corkFlushSize = 64 << 10

// corkBufs are shared between connections: a buffer is taken for a batch and
// given back after it, so idle connections hold none.
var corkBufs = sync.Pool{New: func() any { b := make([]byte, 0, corkFlushSize+4096); return &b }}

// corkConn lets the connection's writer coalesce the websocket frames of one
// batch into one write: coder/websocket flushes every message, which would be
// a syscall (and a TCP segment) per dispatch. Outside a batch it writes
// through. Every real write has WriteTimeout as its deadline.
type corkConn struct {
	net.Conn
	timeout time.Duration

	mu     sync.Mutex // guards corked and buf; held during a real write only to keep frames in order
	corked bool
	buf    *[]byte // from corkBufs while corked
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
			return 0, err
		}
		return c.Conn.Write(p)
	}
	if c.buf == nil {
		c.buf = corkBufs.Get().(*[]byte)
	}
	*c.buf = append(*c.buf, p...)
	if len(*c.buf) >= corkFlushSize {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// cork starts buffering writes.
func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes what was buffered, stops buffering and gives the buffer back.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	err := c.flushLocked()
	if c.buf != nil {
		if cap(*c.buf) <= 2*corkFlushSize {
			corkBufs.Put(c.buf)
		}
		c.buf = nil
	}
	return err
}

func (c *corkConn) flushLocked() error {
	if c.buf == nil || len(*c.buf) == 0 {
		return nil
	}
	err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	if err == nil {
		_, err = c.Conn.Write(*c.buf)
	}
	*c.buf = (*c.buf)[:0]
	return err
}

// corkHijacker hands coder/websocket a corkConn instead of the raw
// connection when it hijacks the handshake.
type corkHijacker struct {
	http.ResponseWriter
	timeout time.Duration
	conn    *corkConn
}

func (w *corkHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("response writer cannot hijack")
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	if brw.Writer.Buffered() > 0 {
		if err := brw.Writer.Flush(); err != nil {
			_ = nc.Close()
			return nil, nil, err
		}
	}
	w.conn = &corkConn{Conn: nc, timeout: w.timeout}
	return w.conn, bufio.NewReadWriter(brw.Reader, bufio.NewWriterSize(w.conn, 1024)), nil
}
