package gateway

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// testMessages returns n gateway messages of varied sizes, some larger than
// the flate window and a zstd block, so every Read path is exercised.
func testMessages(n int, rng *rand.Rand) [][]byte {
	words := make([]string, 64)
	for i := range words {
		words[i] = fmt.Sprintf("w%d", rng.IntN(100000))
	}
	msgs := make([][]byte, n)
	for i := range msgs {
		size := rng.IntN(2000)
		if i%9 == 4 {
			size = 33<<10 + rng.IntN(100<<10) // over the flate window and a zstd block
		}
		var b strings.Builder
		for b.Len() < size {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte(' ')
		}
		msgs[i] = fmt.Appendf(nil, `{"op":0,"s":%d,"t":"MESSAGE_CREATE","d":{"content":%q}}`, i+1, b.String())
	}
	return msgs
}

// zlibFrames compresses msgs as one zlib stream with a sync flush after each,
// and splits each message's bytes into up to split frames at random points.
func zlibFrames(t testing.TB, msgs [][]byte, split int, rng *rand.Rand) [][][]byte {
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	out := make([][][]byte, len(msgs))
	for i, m := range msgs {
		buf.Reset()
		if _, err := zw.Write(m); err != nil {
			t.Fatal(err)
		}
		if err := zw.Flush(); err != nil {
			t.Fatal(err)
		}
		out[i] = splitRandom(bytes.Clone(buf.Bytes()), split, rng)
	}
	return out
}

func zstdFrames(t testing.TB, msgs [][]byte) [][]byte {
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		buf.Reset()
		if _, err := zw.Write(m); err != nil {
			t.Fatal(err)
		}
		if err := zw.Flush(); err != nil {
			t.Fatal(err)
		}
		out[i] = bytes.Clone(buf.Bytes())
	}
	return out
}

func splitRandom(b []byte, n int, rng *rand.Rand) [][]byte {
	var parts [][]byte
	for n > 1 && len(b) > 1 {
		cut := 1 + rng.IntN(len(b)-1)
		parts = append(parts, b[:cut])
		b = b[cut:]
		n--
	}
	return append(parts, b)
}

func TestZlibStreamSplitFrames(t *testing.T) {
	for _, split := range []int{1, 2, 5} {
		t.Run(fmt.Sprint("split", split), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(split)))
			msgs := testMessages(30, rng)
			z := &zlibStream{limit: -1}
			defer z.close()
			got := decodeAll(t, z, zlibFrames(t, msgs, split, rng), func(int) {}, func(int) {})
			for i := range msgs {
				if !bytes.Equal(got[i], msgs[i]) {
					t.Fatalf("message %d: got %d bytes, want %d", i, len(got[i]), len(msgs[i]))
				}
			}
		})
	}
}

// decodeAll decodes frames with z, calling between(i) after each whole
// message i and mid(i) between the parts of a split one, and returns the
// messages.
func decodeAll(t *testing.T, z *zlibStream, frames [][][]byte, between, mid func(i int)) [][]byte {
	t.Helper()
	var out [][]byte
	for i, parts := range frames {
		for j, part := range parts {
			got, err := z.decode(true, part)
			if err != nil {
				t.Fatalf("message %d part %d: %v", i, j, err)
			}
			if j < len(parts)-1 {
				if got != nil {
					t.Fatalf("message %d: output after part %d of %d", i, j, len(parts))
				}
				mid(i)
				continue
			}
			out = append(out, bytes.Clone(got))
			z.release()
			between(i)
		}
	}
	return out
}

func TestZlibStreamCorruptIsErrorThenBroken(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	msgs := testMessages(3, rng)
	frames := zlibFrames(t, msgs, 1, rng)
	z := newTransport(CompressionZlibStream, -1)
	defer z.close()
	if _, err := z.decode(true, frames[0][0]); err != nil {
		t.Fatal(err)
	}
	z.release()
	bad := bytes.Clone(frames[1][0])
	for i := 0; i < len(bad)-4; i++ {
		bad[i] ^= 0x5a
	}
	if _, err := z.decode(true, bad); err == nil {
		t.Fatal("corrupt message decoded without error")
	}
	if _, err := z.decode(true, frames[2][0]); err == nil {
		t.Fatal("a broken stream decoded the next message")
	}
}

func TestZlibStreamBadHeader(t *testing.T) {
	z := newTransport(CompressionZlibStream, -1)
	defer z.close()
	if _, err := z.decode(true, []byte{1, 2, 0, 0, 0xff, 0xff}); err == nil {
		t.Fatal("bad zlib header accepted")
	}
}

func TestZstdStream(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	msgs := testMessages(30, rng)
	frames := zstdFrames(t, msgs)
	z := newTransport(CompressionZstdStream, -1)
	defer z.close()
	for i, f := range frames {
		got, err := z.decode(true, f)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !bytes.Equal(got, msgs[i]) {
			t.Fatalf("message %d: got %d bytes, want %d", i, len(got), len(msgs[i]))
		}
		z.release()
	}
}

func TestZstdStreamCorrupt(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	frames := zstdFrames(t, testMessages(3, rng))
	z := newTransport(CompressionZstdStream, -1)
	defer z.close()
	if _, err := z.decode(true, frames[0]); err != nil {
		t.Fatal(err)
	}
	z.release()
	bad := bytes.Clone(frames[1])
	for i := range bad {
		bad[i] ^= 0xa5
	}
	if _, err := z.decode(true, bad); err == nil {
		t.Fatal("corrupt message decoded without error")
	}
}

func TestPayloadTransport(t *testing.T) {
	z := newTransport(CompressionZlibPayload, -1)
	defer z.close()
	plain := []byte(`{"op":11}`)
	got, err := z.decode(false, plain)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("text frame: %q, %v", got, err)
	}
	z.release()
	for i := range 3 {
		msg := fmt.Appendf(nil, `{"op":0,"s":%d,"t":"X","d":{}}`, i)
		var buf bytes.Buffer
		zw := zlib.NewWriter(&buf)
		zw.Write(msg)
		zw.Close()
		got, err := z.decode(true, buf.Bytes())
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("payload %d: %q, %v", i, got, err)
		}
		z.release()
	}
	if _, err := z.decode(true, []byte("garbage")); err == nil {
		t.Fatal("garbage binary frame accepted")
	}
}

// jsonOfSize returns a gateway message of exactly n bytes.
func jsonOfSize(n int, fill byte) []byte {
	head := []byte(`{"op":0,"s":1,"t":"X","d":"`)
	msg := append(head, bytes.Repeat([]byte{fill}, n-len(head)-2)...)
	return append(msg, '"', '}')
}

// TestZlibStreamMessageEndingAtWindowWrap: flate returns output when its
// 32 KiB window wraps; a message whose output ends exactly there must not
// make the next Read run past the input (a sticky unexpected EOF).
func TestZlibStreamMessageEndingAtWindowWrap(t *testing.T) {
	for _, sizes := range [][]int{{32 << 10, 100, 200}, {10000, 32<<10 - 10000, 300, 64 << 10, 50}} {
		var msgs [][]byte
		for i, n := range sizes {
			msgs = append(msgs, jsonOfSize(n, byte('a'+i)))
		}
		rng := rand.New(rand.NewPCG(5, 5))
		frames := zlibFrames(t, msgs, 1, rng)
		z := newTransport(CompressionZlibStream, -1)
		for i, f := range frames {
			got, err := z.decode(true, f[0])
			if err != nil {
				t.Fatalf("sizes %v, message %d: %v", sizes, i, err)
			}
			if !bytes.Equal(got, msgs[i]) {
				t.Fatalf("sizes %v, message %d: got %d bytes, want %d", sizes, i, len(got), len(msgs[i]))
			}
			z.release()
		}
		z.close()
	}
}
