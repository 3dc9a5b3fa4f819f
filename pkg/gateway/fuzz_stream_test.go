package gateway

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zlib"
)

// fuzzLimit is the transports' inflate limit in the fuzz targets: the
// smallest ReadLimit a Config allows, so that garbage which inflates a lot
// runs into it.
const fuzzLimit = MaxPayloadSize

// checkLimit fails if a transport returned a message over fuzzLimit.
func checkLimit(t *testing.T, out []byte, err error) {
	t.Helper()
	if err == nil && len(out) > fuzzLimit {
		t.Fatalf("returned %d bytes, over the %d-byte limit", len(out), fuzzLimit)
	}
}

// overLimit is a dispatch that inflates past fuzzLimit, for the seeds.
func overLimit() []byte {
	return fmt.Appendf(nil, `{"op":0,"s":3,"t":"X","d":"%s"}`, bytes.Repeat([]byte("a"), 2*fuzzLimit))
}

// FuzzZlibStream feeds arbitrary frames to a zlib-stream transport after a
// valid first message: it must never panic, never return more than its limit,
// and after an error the stream stays broken (no silent resynchronisation on
// garbage).
func FuzzZlibStream(f *testing.F) {
	rng := rand.New(rand.NewPCG(7, 7))
	msgs := testMessages(3, rng)
	msgs[2] = overLimit()
	frames := zlibFrames(f, msgs, 1, rng)
	f.Add(frames[1][0], frames[2][0], uint8(1))
	f.Add([]byte{0, 0, 0xff, 0xff}, []byte{1, 2, 3}, uint8(3))
	f.Add(append([]byte{0x02, 0x00}, zlibSuffix...), frames[1][0], uint8(2))
	f.Fuzz(func(t *testing.T, a, b []byte, split uint8) {
		z := newTransport(CompressionZlibStream, fuzzLimit)
		defer z.close()
		if _, err := z.decode(true, frames[0][0]); err != nil {
			t.Fatal(err)
		}
		z.release()
		failed := false
		for _, in := range [][]byte{a, b} {
			for _, part := range splitRandom(in, int(split%4)+1, rand.New(rand.NewPCG(uint64(len(in)), 1))) {
				out, err := z.decode(true, part)
				checkLimit(t, out, err)
				z.release()
				if failed && err == nil {
					t.Fatal("broken stream decoded again")
				}
				failed = failed || err != nil
			}
		}
	})
}

// FuzzZstdStream does the same for zstd-stream, starting from scratch (the
// frame header is part of the input).
func FuzzZstdStream(f *testing.F) {
	rng := rand.New(rand.NewPCG(8, 8))
	frames := zstdFrames(f, testMessages(2, rng))
	f.Add(frames[0], frames[1])
	bomb := zstdFrames(f, [][]byte{[]byte(`{"op":11}`), overLimit()})
	f.Add(bomb[0], bomb[1])
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0}, []byte{})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		z := newTransport(CompressionZstdStream, fuzzLimit)
		defer z.close()
		failed := false
		for _, in := range [][]byte{a, b} {
			out, err := z.decode(true, in)
			if err == nil && out == nil {
				t.Fatal("zstd-stream returned no message and no error")
			}
			checkLimit(t, out, err)
			z.release()
			if failed && err == nil {
				t.Fatal("broken stream decoded again")
			}
			failed = failed || err != nil
		}
	})
}

// FuzzZlibPayload: per-payload zlib must never panic on garbage, nor inflate
// past its limit.
func FuzzZlibPayload(f *testing.F) {
	f.Add([]byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01}, true)
	f.Add([]byte(`{"op":11}`), false)
	var payload bytes.Buffer
	zw := zlib.NewWriter(&payload)
	zw.Write(overLimit())
	zw.Close()
	f.Add(payload.Bytes(), true)
	f.Fuzz(func(t *testing.T, in []byte, binary bool) {
		z := newTransport(CompressionZlibPayload, fuzzLimit)
		defer z.close()
		out, err := z.decode(binary, in)
		if binary {
			checkLimit(t, out, err)
		}
		if err == nil && !binary && !bytes.Equal(out, in) {
			t.Fatal("text frame changed")
		}
		z.release()
	})
}
