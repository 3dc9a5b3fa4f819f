package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zlib"
)

// bombMessage is a 4 MiB dispatch that compresses to a few KiB.
func bombMessage() []byte {
	return fmt.Appendf(nil, `{"op":0,"s":2,"t":"X","d":"%s"}`, bytes.Repeat([]byte("a"), 4<<20))
}

// TestInflateStopsAtReadLimit: each compressed transport refuses a message
// that inflates past its limit, with errInflatedTooLarge, having held far
// less than the whole message; a message at the limit passes.
func TestInflateStopsAtReadLimit(t *testing.T) {
	const limit = 64 << 10
	small := []byte(`{"op":11}`)
	bomb := bombMessage()
	var payload bytes.Buffer
	zw := zlib.NewWriter(&payload)
	zw.Write(bomb)
	zw.Close()
	zf := zlibFrames(t, [][]byte{small, bomb}, 1, rand.New(rand.NewPCG(5, 5)))
	cases := []struct {
		c      Compression
		frames [][]byte // small (a text frame for zlib-payload), then bomb
	}{
		{CompressionZlibStream, [][]byte{zf[0][0], zf[1][0]}},
		{CompressionZstdStream, zstdFrames(t, [][]byte{small, bomb})},
		{CompressionZlibPayload, [][]byte{small, payload.Bytes()}},
	}
	for _, tc := range cases {
		t.Run(string(tc.c), func(t *testing.T) {
			if len(tc.frames[1]) > limit {
				t.Fatalf("compressed bomb is %d bytes: the test needs it under the limit", len(tc.frames[1]))
			}
			z := newTransport(tc.c, limit)
			defer z.close()
			got, err := z.decode(tc.c != CompressionZlibPayload, tc.frames[0])
			if err != nil || !bytes.Equal(got, small) {
				t.Fatalf("small message: %q, %v", got, err)
			}
			z.release()
			_, err = z.decode(true, tc.frames[1])
			if !errors.Is(err, errInflatedTooLarge) {
				t.Fatalf("4 MiB message under a %d-byte limit: err %v, want errInflatedTooLarge", limit, err)
			}
			if held := inflatedCap(z); held > 1<<20 {
				t.Fatalf("inflate buffer grew to %d bytes for a %d-byte limit", held, limit)
			}
		})
	}
}

// inflatedCap is the capacity of the transport's inflate buffer, if it has one.
func inflatedCap(z transport) int {
	var out *[]byte
	switch z := z.(type) {
	case *zlibStream:
		out = z.out
	case *zstdStream:
		out = z.out
	case *payloadTransport:
		out = z.out
	}
	if out == nil {
		return 0
	}
	return cap(*out)
}

// BenchmarkInflateBomb is the zlib-stream case: a 100 MiB dispatch
// that compresses to about 100 KB, under the default 64 MiB ReadLimit, and
// with no limit (what every transport did before). B/op is what one such
// message costs in memory.
func BenchmarkInflateBomb(b *testing.B) {
	bomb := fmt.Appendf(nil, `{"op":0,"s":2,"t":"X","d":"%s"}`, bytes.Repeat([]byte("a"), 100<<20))
	frame := zlibFrames(b, [][]byte{bomb}, 1, rand.New(rand.NewPCG(6, 6)))[0][0]
	b.Logf("%d bytes inflate to %d", len(frame), len(bomb))
	for _, limit := range []int64{DefaultConfig().ReadLimit, -1} {
		b.Run(fmt.Sprintf("limit=%d", limit), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				z := newTransport(CompressionZlibStream, limit)
				_, err := z.decode(true, frame)
				if limit >= 0 != errors.Is(err, errInflatedTooLarge) {
					b.Fatalf("limit %d: %v", limit, err)
				}
				z.close()
			}
		})
	}
}
