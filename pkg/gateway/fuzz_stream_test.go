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
// garbage), also when split's high bit releases it after every part.
func FuzzZlibStream(f *testing.F) {
	rng := rand.New(rand.NewPCG(7, 7))
	msgs := testMessages(3, rng)
	msgs[2] = overLimit()
	frames := zlibFrames(f, msgs, 1, rng)
	f.Add(frames[1][0], frames[2][0], uint8(1))
	f.Add([]byte{0, 0, 0xff, 0xff}, []byte{1, 2, 3}, uint8(3))
	f.Add(append([]byte{0x02, 0x00}, zlibSuffix...), frames[1][0], uint8(2))
	f.Add(frames[1][0], frames[2][0], uint8(0x81))
	f.Fuzz(func(t *testing.T, a, b []byte, split uint8) {
		z := &zlibStream{limit: fuzzLimit}
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
				if split&0x80 != 0 {
					z.releaseIdle()
				}
				if failed && err == nil {
					t.Fatal("broken stream decoded again")
				}
				failed = failed || err != nil
			}
		}
	})
}

// FuzzZlibStreamIdleRelease: a valid stream of messages made from the input
// (repeated, so that some outrun the window and quote earlier ones), split
// into frames and released at the message boundaries mask picks, decodes
// exactly as the plain transport decodes it, and no release happens while a
// message is half read.
func FuzzZlibStreamIdleRelease(f *testing.F) {
	f.Add([]byte(`{"content":"hello"}`), uint8(3), uint8(2), uint64(0b1011))
	f.Add(bytes.Repeat([]byte("abcd"), 300), uint8(40), uint8(1), ^uint64(0))
	f.Fuzz(func(t *testing.T, data []byte, repeat, split uint8, mask uint64) {
		rng := rand.New(rand.NewPCG(uint64(len(data)), mask))
		msgs := make([][]byte, 10)
		for i := range msgs {
			from := rng.IntN(len(data) + 1)
			piece := data[from:min(len(data), from+rng.IntN(4096))]
			n := 1 + int(repeat)*(i%3)
			msgs[i] = fmt.Appendf(nil, `{"op":0,"s":%d,"d":"%x"}`, i+1, bytes.Repeat(piece, min(n, 1+(24<<10)/(len(piece)+1))))
		}
		frames := zlibFrames(t, msgs, int(split%4)+1, rng)
		plain := &zlibStream{limit: -1}
		defer plain.close()
		want := decodeAll(t, plain, frames, func(int) {}, func(int) {})
		z := &zlibStream{limit: -1}
		defer z.close()
		got := decodeAll(t, z, frames, func(i int) {
			if mask>>(i%64)&1 == 1 && !z.releaseIdle() {
				t.Fatalf("after message %d: release refused", i)
			}
		}, func(i int) {
			if z.releaseIdle() {
				t.Fatalf("message %d: released while half read", i)
			}
		})
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("message %d: %d bytes after releases, %d without", i, len(got[i]), len(want[i]))
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
