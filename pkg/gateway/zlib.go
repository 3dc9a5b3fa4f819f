package gateway

import (
	"bytes"
	"fmt"
	"io"
)

// zlibSuffix ends every zlib-stream message: the Z_SYNC_FLUSH marker.
var zlibSuffix = []byte{0x00, 0x00, 0xff, 0xff}

// maxPendingCompressed bounds a message still waiting for its sync marker.
const maxPendingCompressed = 64 << 20

// zlibStream is transport compression zlib-stream: one zlib stream per
// connection, each message ending with a sync flush (reference §8).
//
// The inflater reads straight from a bytes.Reader reset to each complete
// message; no goroutine, no pipe. flate's reader never reads past the sync
// marker before it has returned the message's output, and we stop calling
// Read once the input is used up (see inflateMessage), so the decompressor
// never sees an EOF, which would stick.
//
// One edge needs care: flate also returns output when its 32 KiB window
// wraps. If a message's output ends exactly there, the Read that returns it
// leaves the end-of-block code and the sync marker unread, and one more Read
// would run past the input. So when a Read returns with input left, we check
// whether the output is already one complete JSON value (a gateway message
// is exactly one object, so a proper prefix never is); if so the message is
// done and the unread bytes are carried over to the front of the next one.
type zlibStream struct {
	pending *[]byte // compressed bytes of a message split across frames (from framePool; nil between messages)
	carry   []byte  // unread tail of the previous message (window-wrap edge)
	src     bytes.Reader
	fr      io.ReadCloser // raw flate reader, from the first message on; nil while released (zlib_idle.go)
	// window is how much output history the decoder holds, up to maxWindow;
	// snapshot is that history, compressed, while released.
	window   int
	snapshot []byte
	out      *[]byte
	broken   error
	limit    int64 // largest inflated message; -1: none
}

func (z *zlibStream) decode(_ bool, frame []byte) ([]byte, error) {
	if z.broken != nil {
		return nil, z.broken
	}
	in := frame
	if len(z.carry) > 0 {
		z.appendPending(z.carry)
		z.carry = z.carry[:0]
	}
	if z.pending != nil || !bytes.HasSuffix(frame, zlibSuffix) {
		if len(z.pendingBytes())+len(frame) > maxPendingCompressed {
			return nil, z.fail(fmt.Errorf("zlib-stream: message over %d bytes without a sync marker", maxPendingCompressed))
		}
		z.appendPending(frame)
		if !bytes.HasSuffix(*z.pending, zlibSuffix) {
			return nil, nil
		}
		in = *z.pending
	}
	if err := z.open(in); err != nil {
		return nil, z.fail(err)
	}
	z.out = inflatePool.get()
	msg, err := inflateMessage(z.fr, &z.src, *z.out, maxWindow, z.limit, z.endsAtWindowWrap)
	*z.out = msg[:0]
	if err != nil {
		return nil, z.fail(fmt.Errorf("zlib-stream: %w", err))
	}
	z.window = min(z.window+len(msg), maxWindow)
	if z.src.Len() > 0 {
		z.carry = append(z.carry[:0], in[len(in)-z.src.Len():]...)
	}
	z.releasePending() // after the carry is copied out of it
	return msg, nil
}

// open points the decoder at in, a whole message: a new one at the
// connection's first message (after the zlib header), a restored one after
// an idle release.
func (z *zlibStream) open(in []byte) error {
	switch {
	case z.fr != nil:
		z.src.Reset(in)
	case z.snapshot != nil:
		return z.restore(in)
	default:
		body, err := zlibHeader(in)
		if err != nil {
			return err
		}
		z.src.Reset(body)
		z.fr = getInflater(&z.src, nil)
	}
	return nil
}

// appendPending adds b to the pending message, taking a buffer from
// framePool for its first part.
func (z *zlibStream) appendPending(b []byte) {
	if z.pending == nil {
		z.pending = framePool.get()
	}
	*z.pending = append(*z.pending, b...)
}

func (z *zlibStream) pendingBytes() []byte {
	if z.pending == nil {
		return nil
	}
	return *z.pending
}

// releasePending gives the pending buffer back once its message is decoded:
// a message split across frames is rare (large payloads, mostly at startup),
// and an idle connection should not keep the buffer it needed then.
func (z *zlibStream) releasePending() {
	framePool.put(z.pending)
	z.pending = nil
}

// maxCarry bounds what the window-wrap edge leaves unread: the rest of an
// end-of-block code, a stored block header and the 4-byte marker.
const maxCarry = 16

// endsAtWindowWrap reports, after a Read that left input unread, whether the
// output is already the whole message (the window-wrap edge). Only a short
// tail can hold nothing but the block's end and the marker, which keeps this
// check (a parse of the output) off the many window wraps of a large message.
func (z *zlibStream) endsAtWindowWrap(out []byte) bool {
	return z.src.Len() <= maxCarry && isOneJSONValue(out)
}

// isOneJSONValue reports whether b is exactly one JSON value.
func isOneJSONValue(b []byte) bool {
	p := parser{buf: b}
	p.skipSpace()
	if p.skipValue() != nil {
		return false
	}
	p.skipSpace()
	return p.pos == len(b)
}

// inflateMessage reads r until src is used up, or until complete (if not nil)
// accepts the output while input is left. Each Read gets more than maxChunk
// bytes of room, maxChunk being the most a decompressor returns at once, so
// when src is empty after a Read that Read has returned everything the
// consumed input held. It never calls Read on an exhausted src. Output over
// limit (unless -1) is an error as soon as it is seen: the buffer never grows
// past limit+maxChunk+1.
func inflateMessage(r io.Reader, src *bytes.Reader, buf []byte, maxChunk int, limit int64, complete func([]byte) bool) ([]byte, error) {
	for idle := 0; ; {
		if cap(buf)-len(buf) <= maxChunk {
			buf = growInflated(buf, maxChunk, limit)
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			return buf, err
		}
		if limit >= 0 && int64(len(buf)) > limit {
			return buf, fmt.Errorf("%w (%d bytes)", errInflatedTooLarge, limit)
		}
		if src.Len() == 0 || (n > 0 && complete != nil && complete(buf)) {
			return buf, nil
		}
		if n == 0 {
			if idle++; idle > 100 {
				return buf, io.ErrNoProgress
			}
		}
	}
}

// growInflated doubles buf's room (plus maxChunk+1), but not beyond what a
// message of limit bytes and one more Read need.
func growInflated(buf []byte, maxChunk int, limit int64) []byte {
	grow := cap(buf) + maxChunk + 1
	if limit >= 0 {
		grow = min(grow, max(int(limit)+maxChunk+1-cap(buf), maxChunk+1))
	}
	return append(buf[:cap(buf)], make([]byte, grow)...)[:len(buf)]
}

// zlibHeader checks RFC 1950's two header bytes and returns the deflate data.
func zlibHeader(in []byte) ([]byte, error) {
	if len(in) < 2 {
		return nil, fmt.Errorf("zlib-stream: first message shorter than the zlib header")
	}
	cmf, flg := in[0], in[1]
	if cmf&0x0f != 8 || cmf>>4 > 7 || (uint16(cmf)<<8|uint16(flg))%31 != 0 {
		return nil, fmt.Errorf("zlib-stream: invalid zlib header %#x %#x", cmf, flg)
	}
	if flg&0x20 != 0 {
		return nil, fmt.Errorf("zlib-stream: preset dictionary not supported")
	}
	return in[2:], nil
}

func (z *zlibStream) fail(err error) error {
	z.broken = fmt.Errorf("%w: %w", errStreamBroken, err)
	z.releasePending()
	z.carry = nil
	return z.broken
}

func (z *zlibStream) release() {
	inflatePool.put(z.out)
	z.out = nil
}

func (z *zlibStream) close() {
	z.release()
	if z.fr != nil {
		inflaters.Put(z.fr) // Close does nothing: a flate reader holds no resource
		z.fr = nil
	}
	z.snapshot = nil
	z.releasePending()
}
