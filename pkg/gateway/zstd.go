package gateway

import (
	"bytes"
	"fmt"

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
	msg, err := inflateMessage(z.dec, &z.src, *z.out, zstdMaxBlock, z.limit, nil)
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
