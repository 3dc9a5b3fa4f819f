package gatewaytest

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// transportEncoder compresses every message of one connection through one
// stream context (zlib-stream, zstd-stream). It is used by the connection's
// writer goroutine only. encode's result is valid until the next call.
// release drops what state the stream can do without while the connection
// is idle (the stream stays valid).
type transportEncoder interface {
	encode(msg []byte) ([]byte, error)
	release()
	close()
}

func newTransportEncoder(c gateway.Compression) (transportEncoder, error) {
	switch c {
	case gateway.CompressionZlibStream:
		return &zlibStream{}, nil
	case gateway.CompressionZstdStream:
		e := &zstdStream{}
		w, err := zstd.NewWriter(&e.buf, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<15), zstd.WithLowerEncoderMem(true))
		if err != nil {
			return nil, fmt.Errorf("zstd-stream writer: %w", err)
		}
		e.w = w
		return e, nil
	}
	return nil, nil
}

// zlibHeader starts the connection's zlib stream (deflate, 32 KiB window,
// fastest level); the stream is never ended, so no Adler-32 trailer follows.
var zlibHeader = []byte{0x78, 0x01}

// flateWriters are shared by connections: an active connection keeps one
// (and its history) while it sends; an idle one gives it back.
var flateWriters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestSpeed) // the level is valid
	return w
}}

// zlibStream: one zlib stream per connection; Write+Flush per message, so each
// message ends with the sync marker 00 00 ff ff and only the first carries the
// zlib header. After release the next message starts fresh deflate blocks
// without back-references (still the same valid stream), so idle connections
// hold no compressor state.
type zlibStream struct {
	buf        bytes.Buffer
	w          *flate.Writer // nil while released
	headerSent bool
	spliced    bool // blocks not written by w went out since w's last Reset
}

func (e *zlibStream) start() {
	e.buf.Reset()
	if !e.headerSent {
		e.buf.Write(zlibHeader)
		e.headerSent = true
	}
}

func (e *zlibStream) encode(msg []byte) ([]byte, error) {
	e.start()
	if e.w == nil {
		e.w = flateWriters.Get().(*flate.Writer)
		e.w.Reset(&e.buf)
	} else if e.spliced {
		// w's history no longer matches the client's window: start afresh.
		e.w.Reset(&e.buf)
	}
	e.spliced = false
	if _, err := e.w.Write(msg); err != nil {
		return nil, fmt.Errorf("zlib-stream write: %w", err)
	}
	if err := e.w.Flush(); err != nil {
		return nil, fmt.Errorf("zlib-stream flush: %w", err)
	}
	return e.buf.Bytes(), nil
}

func (e *zlibStream) release() {
	if e.w != nil {
		e.w.Reset(nil)
		flateWriters.Put(e.w)
		e.w = nil
	}
	e.buf = bytes.Buffer{}
}

func (e *zlibStream) close() { e.release() }

// spliceMin: dispatch data at least this large goes through the splice path.
const spliceMin = 256

// encodeSpliced writes one dispatch as deflate blocks spliced into the
// stream: the envelope head as a stored block, then the data and the closing
// brace compressed on their own (no back-references outside themselves), the
// latter cached per data slice. The message still ends with the sync marker
// 00 00 ff ff and decodes through the connection's one inflate context; it
// only lets the fake compress each distinct payload once, however many
// sessions and seqs it goes to, so it can feed fast clients.
func (e *zlibStream) encodeSpliced(head, body []byte, cache *deflateCache) []byte {
	e.start()
	b := e.buf.Bytes()
	b = appendStoredBlock(b, head)
	b = append(b, cache.get(body)...)
	e.spliced = true
	e.buf = *bytes.NewBuffer(b)
	return b
}

// appendStoredBlock appends p as non-final stored deflate blocks; the stream
// must be at a byte boundary (it is, after a sync flush or the header).
func appendStoredBlock(b, p []byte) []byte {
	for {
		n := min(len(p), 0xffff)
		b = append(b, 0, byte(n), byte(n>>8), ^byte(n), ^byte(n>>8))
		b = append(b, p[:n]...)
		p = p[n:]
		if len(p) == 0 {
			return b
		}
	}
}

// deflateCache holds data+"}" compressed on its own and sync-flushed, per
// data slice (pointer and length: Dispatch shares one slice between every
// session it reaches; a slice must not be modified after Dispatch). It is
// bounded: when full, it starts over.
type deflateCache struct {
	mu   sync.Mutex
	m    map[cacheKey][]byte
	w    *flate.Writer
	buf  bytes.Buffer
	max  int
	hits uint64
}

type cacheKey struct {
	p *byte
	n int
}

func newDeflateCache(maxEntries int) *deflateCache {
	w, _ := flate.NewWriter(nil, flate.BestSpeed) // the level is valid
	return &deflateCache{m: make(map[cacheKey][]byte), w: w, max: maxEntries}
}

func (d *deflateCache) get(body []byte) []byte {
	k := cacheKey{&body[0], len(body)}
	d.mu.Lock()
	defer d.mu.Unlock()
	if out, ok := d.m[k]; ok {
		d.hits++
		return out
	}
	d.buf.Reset()
	d.w.Reset(&d.buf)
	_, _ = d.w.Write(body) // writes to a bytes.Buffer cannot fail
	_, _ = d.w.Write([]byte{'}'})
	_ = d.w.Flush()
	out := bytes.Clone(d.buf.Bytes())
	if len(d.m) >= d.max {
		clear(d.m)
	}
	d.m[k] = out
	return out
}

// zstdStream: one zstd frame per connection, never ended; Flush per message
// so each websocket message holds exactly one gateway message.
type zstdStream struct {
	buf bytes.Buffer
	w   *zstd.Encoder
}

func (e *zstdStream) encode(msg []byte) ([]byte, error) {
	e.buf.Reset()
	if _, err := e.w.Write(msg); err != nil {
		return nil, fmt.Errorf("zstd-stream write: %w", err)
	}
	if err := e.w.Flush(); err != nil {
		return nil, fmt.Errorf("zstd-stream flush: %w", err)
	}
	return e.buf.Bytes(), nil
}

// release keeps the encoder: ending the frame to drop it would put a frame
// end inside a message, which clients need not expect.
func (e *zstdStream) release() {}

func (e *zstdStream) close() { _ = e.w.Close() }

// payloadZlib compresses one payload on its own (IDENTIFY compress:true): a
// complete zlib stream per payload, no shared context. Writers are pooled.
var payloadZlibPool = sync.Pool{New: func() any {
	w, _ := zlib.NewWriterLevel(nil, zlib.BestSpeed) // the level is valid
	return w
}}

func compressPayload(msg []byte) ([]byte, error) {
	var buf bytes.Buffer
	w := payloadZlibPool.Get().(*zlib.Writer)
	defer payloadZlibPool.Put(w)
	w.Reset(&buf)
	if _, err := w.Write(msg); err != nil {
		return nil, fmt.Errorf("payload zlib write: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("payload zlib close: %w", err)
	}
	return buf.Bytes(), nil
}

// splitMessage cuts b into n nearly equal non-empty parts (fewer if b is short).
func splitMessage(b []byte, n int) [][]byte {
	if n > len(b) {
		n = len(b)
	}
	if n <= 1 {
		return [][]byte{b}
	}
	parts := make([][]byte, 0, n)
	size := len(b) / n
	for i := 0; i < n-1; i++ {
		parts = append(parts, b[i*size:(i+1)*size])
	}
	return append(parts, b[(n-1)*size:])
}
