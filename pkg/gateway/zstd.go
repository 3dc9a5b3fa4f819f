package gateway

import (
	"bytes"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// maxZstdWindow bounds the window a server may ask for, so a hostile frame
// header cannot make the decoder allocate without limit.
const maxZstdWindow = 8 << 20

// zstdStream is transport compression zstd-stream: one zstd frame for the
// whole connection; each websocket message holds whole blocks of it.
//
// The decoder runs synchronously (concurrency 1, no goroutines), reading
// from a bytes.Reader reset to each message. In that mode a Read decodes at
// most one block and returns, so inflateMessage stops exactly when the
// message's blocks are used up, without the decoder hitting an EOF.
type zstdStream struct {
	src    bytes.Reader
	dec    *zstd.Decoder
	out    *[]byte
	broken error
	limit  int64 // largest inflated message; -1: none
}

func (z *zstdStream) decode(_ bool, frame []byte) ([]byte, error) {
	if z.broken != nil {
		return nil, z.broken
	}
	if len(frame) == 0 {
		return nil, z.fail(fmt.Errorf("zstd-stream: empty message"))
	}
	z.src.Reset(frame)
	if z.dec == nil {
		dec, err := zstd.NewReader(&z.src, zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return nil, z.fail(fmt.Errorf("zstd-stream: %w", err))
		}
		z.dec = dec
	}
	z.out = inflatePool.get()
	msg, err := inflateMessage(z.dec, &z.src, *z.out, zstdMaxBlock, z.limit)
	*z.out = msg[:0]
	if err != nil {
		return nil, z.fail(fmt.Errorf("zstd-stream: %w", err))
	}
	return msg, nil
}

func (z *zstdStream) fail(err error) error {
	z.broken = fmt.Errorf("%w: %w", errStreamBroken, err)
	return z.broken
}

func (z *zstdStream) release() {
	inflatePool.put(z.out)
	z.out = nil
}

func (z *zstdStream) close() {
	z.release()
	if z.dec != nil {
		z.dec.Close()
		z.dec = nil
	}
}

// zstdMaxBlock is the largest block a zstd frame holds (decoded), so the most
// one synchronous Read returns.
const zstdMaxBlock = 128 << 10

// inflateMessage reads r until src is used up. Each Read gets more than maxChunk
// bytes of room, maxChunk being the most a decompressor returns at once, so
// when src is empty after a Read that Read has returned everything the
// consumed input held. It never calls Read on an exhausted src. Output over
// limit (unless -1) is an error as soon as it is seen: the buffer never grows
// past limit+maxChunk+1.
func inflateMessage(r io.Reader, src *bytes.Reader, buf []byte, maxChunk int, limit int64) ([]byte, error) {
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
		if src.Len() == 0 {
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
