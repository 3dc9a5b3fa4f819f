package gateway

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/shardfleet/shardfleet/internal/inflate"
)

// zlibSuffix ends every zlib-stream message: the Z_SYNC_FLUSH marker.
var zlibSuffix = []byte{0x00, 0x00, 0xff, 0xff}

// maxPendingCompressed bounds a message still waiting for its sync marker.
const maxPendingCompressed = 64 << 20

// zlibStream is transport compression zlib-stream: one zlib stream per
// connection, each message ending with a sync flush (reference §8).
//
// Each complete message (its frames up to the sync marker) is decoded in one
// call by internal/inflate, which needs nothing but the message and the
// stream's history: no reader, no goroutine, no window-wrap edge.
type zlibStream struct {
	pending *[]byte         // compressed bytes of a message split across frames (from framePool; nil between messages)
	inf     *inflate.Stream // from the first message on (from streams); nil while released (zlib_idle.go)
	// snapshot is the decoder's history, compressed, while released;
	// window is its length.
	window   int
	snapshot []byte
	// spare is the last snapshot's array once restored: the next release
	// compresses into it. A quiet shard releases and restores once per
	// heartbeat ACK, and a new array each time was the largest part of an
	// idle worker's garbage after its status (docs/benchmarks.md, issue 16
	// fifth round).
	spare  []byte
	out    *[]byte
	broken error
	limit  int64 // largest inflated message; -1: none
}

func (z *zlibStream) decode(_ bool, frame []byte) ([]byte, error) {
	if z.broken != nil {
		return nil, z.broken
	}
	in := frame
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
	in, err := z.open(in)
	if err != nil {
		return nil, z.fail(err)
	}
	z.out = inflatePool.get()
	msg, err := z.inf.Message((*z.out)[:0], in)
	*z.out = msg[:0]
	if errors.Is(err, inflate.ErrTooLarge) {
		err = fmt.Errorf("%w (%d bytes)", errInflatedTooLarge, z.limit)
	}
	if err != nil {
		return nil, z.fail(fmt.Errorf("zlib-stream: %w", err))
	}
	z.releasePending()
	return msg, nil
}

// open readies the decoder for in, a whole message, and returns its deflate
// data: a new decoder at the connection's first message (after the zlib
// header), a restored one after an idle release.
func (z *zlibStream) open(in []byte) ([]byte, error) {
	switch {
	case z.inf != nil:
		return in, nil
	case z.snapshot != nil:
		return in, z.restore()
	}
	body, err := zlibHeader(in)
	if err != nil {
		return nil, err
	}
	z.inf = getStream(z.limit)
	return body, nil
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
	return z.broken
}

func (z *zlibStream) release() {
	inflatePool.put(z.out)
	z.out = nil
}

func (z *zlibStream) close() {
	z.release()
	putStream(z.inf)
	z.inf = nil
	z.snapshot, z.spare = nil, nil
	z.releasePending()
}
