package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zlib"
)

// transport turns the websocket messages of one connection into gateway
// messages (plain JSON). One transport serves exactly one connection: the
// stream modes keep a decompression context for the connection's lifetime.
//
// decode is called from the connection's read loop only. It returns nil, nil
// when the message is incomplete (zlib-stream split across frames). The
// returned slice is valid until release; its data is never handed to the
// event handler without a copy.
type transport interface {
	decode(binary bool, frame []byte) ([]byte, error)
	release()
	close()
}

// newTransport returns the transport for a compression mode. limit bounds a
// decompressed message as Config.ReadLimit bounds a websocket message (-1: no
// limit): the read limit alone would let a small compressed message inflate
// without bound.
func newTransport(c Compression, limit int64) transport {
	switch c {
	case CompressionZlibStream:
		return &zlibStream{limit: limit}
	case CompressionZstdStream:
		return &zstdStream{limit: limit}
	default:
		return &payloadTransport{limit: limit}
	}
}

// errStreamBroken marks a stream transport that failed once: the shared
// decompression context is unusable, so the connection must be replaced.
var errStreamBroken = errors.New("gateway: compressed stream broken")

// errInflatedTooLarge: a compressed message inflates to more than the read
// limit. Decompression stops at the limit, so the message is never held whole.
var errInflatedTooLarge = errors.New("decompressed message over the read limit")

// bufPool hands out byte buffers for messages in flight. Buffers live only
// while one message is decoded, so an idle connection holds none.
type bufPool struct {
	pool    sync.Pool
	size    int // initial capacity
	maxKeep int // larger buffers are dropped instead of pooled
}

func (p *bufPool) get() *[]byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, p.size)
	return &b
}

func (p *bufPool) put(b *[]byte) {
	if b == nil || cap(*b) > p.maxKeep {
		return
	}
	*b = (*b)[:0]
	p.pool.Put(b)
}

var (
	// framePool holds raw websocket messages as read.
	framePool = bufPool{size: 8 << 10, maxKeep: 1 << 20}
	// inflatePool holds decompressed messages. Each zstd Read into one must
	// have more free space than a decompressor can return at once (128 KiB,
	// a zstd block); see inflateMessage.
	inflatePool = bufPool{size: 256 << 10, maxKeep: 4 << 20}
)

// payloadTransport is no compression, or per-payload zlib (IDENTIFY
// compress:true): text frames are JSON, binary frames are one zlib stream each.
type payloadTransport struct {
	src   bytes.Reader
	out   *[]byte
	limit int64
}

// zlibReaders holds per-payload zlib readers (about 35 KiB of inflater state
// each) for all connections: a payload is inflated in one go, so between
// payloads a connection needs none.
var zlibReaders sync.Pool

func (t *payloadTransport) decode(binary bool, frame []byte) ([]byte, error) {
	if !binary {
		return frame, nil
	}
	t.src.Reset(frame)
	var zr io.ReadCloser
	var err error
	if pooled, ok := zlibReaders.Get().(io.ReadCloser); ok {
		zr, err = pooled, pooled.(zlib.Resetter).Reset(&t.src, nil)
	} else {
		zr, err = zlib.NewReader(&t.src)
	}
	if err != nil {
		return nil, fmt.Errorf("zlib payload: %w", err) // zr is dropped: its state is unknown
	}
	defer zlibReaders.Put(zr) // Reset makes it as good as new, even after a read error
	t.out = inflatePool.get()
	buf, err := readMessage(limitInflated(zr, t.limit), *t.out)
	*t.out = buf
	if err == nil && t.limit >= 0 && int64(len(buf)) > t.limit {
		err = fmt.Errorf("%w (%d bytes)", errInflatedTooLarge, t.limit)
	}
	if err != nil {
		return nil, fmt.Errorf("zlib payload: %w", err)
	}
	return buf, nil
}

// limitInflated lets one byte past limit through, so that an oversized
// payload is seen as such, and no more.
func limitInflated(r io.Reader, limit int64) io.Reader {
	if limit < 0 {
		return r
	}
	return io.LimitReader(r, limit+1)
}

func (t *payloadTransport) release() {
	inflatePool.put(t.out)
	t.out = nil
}

func (t *payloadTransport) close() {
	t.release()
}
