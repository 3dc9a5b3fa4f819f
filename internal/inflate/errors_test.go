package inflate_test

import (
	"bytes"
	"errors"
	"io"
	"math/bits"
	"runtime"
	"testing"

	"github.com/klauspost/compress/flate"

	"github.com/shardfleet/shardfleet/internal/inflate"
)

// bitWriter writes deflate bits by hand, for streams no writer makes.
type bitWriter struct {
	out []byte
	n   uint // bits used in the last byte
}

// bits writes the n low bits of v, least significant first.
func (w *bitWriter) bits(v uint32, n uint) *bitWriter {
	for ; n > 0; n-- {
		if w.n == 0 {
			w.out = append(w.out, 0)
		}
		w.out[len(w.out)-1] |= byte(v&1) << w.n
		v >>= 1
		w.n = (w.n + 1) % 8
	}
	return w
}

// code writes a Huffman code of n bits, most significant first.
func (w *bitWriter) code(c uint32, n uint) *bitWriter {
	return w.bits(bits.Reverse32(c)>>(32-n), n)
}

// syncMarker ends a message: an empty non-final stored block.
func (w *bitWriter) syncMarker() []byte {
	w.bits(0, 3)
	w.n = 0
	return append(w.out, 0, 0, 0xff, 0xff)
}

// dynamicHeader writes a dynamic block's header with a code-length code of
// three codes: 8 (length 1, code 0), 0 (code 10) and 18 (code 11), then the
// given literal/length code lengths (each 8 or 0; zeros are written as runs)
// and one distance code length of 0.
func dynamicHeader(w *bitWriter, litLens []uint8) *bitWriter {
	w.bits(0b100, 3) // not final, dynamic
	w.bits(uint32(len(litLens)-257), 5).bits(0, 5).bits(1, 4)
	// Code-length code lengths in their order 16, 17, 18, 0, 8.
	w.bits(0, 3).bits(0, 3).bits(2, 3).bits(2, 3).bits(1, 3)
	lens := append(litLens, 0)
	for i := 0; i < len(lens); {
		if lens[i] == 8 {
			w.code(0, 1)
			i++
			continue
		}
		run := 0
		for i+run < len(lens) && lens[i+run] == 0 && run < 138 {
			run++
		}
		if run >= 11 {
			w.code(0b11, 2).bits(uint32(run-11), 7)
			i += run
			continue
		}
		w.code(0b10, 2)
		i++
	}
	return w
}

func lengths(n int, eights int) []uint8 {
	l := make([]uint8, n)
	for i := range eights {
		l[i] = 8
	}
	return l
}

// fixedMatch is a non-final fixed-Huffman block: the literal 'a', then a
// match of length 3 at distance 2.
func fixedMatch() []byte {
	w := new(bitWriter)
	w.bits(0b010, 3)    // not final, fixed
	w.code(0x30+'a', 8) // literal 'a'
	w.code(1, 7)        // length 3: symbol 257
	w.code(1, 5)        // distance 2: distance code 1
	w.code(0, 7)        // end of block
	return w.syncMarker()
}

func TestErrors(t *testing.T) {
	valid := compress(t, writerNamed("klauspost1"), messageCreates(2))
	var ended bytes.Buffer
	fw, _ := flate.NewWriter(&ended, 1)
	_, _ = fw.Write(messageCreates(1)[0])
	_ = fw.Close() // the final block

	cases := []struct {
		name string
		msgs [][]byte
		want error
	}{
		{"cut inside a dynamic block", [][]byte{valid[0][:len(valid[0])/2]}, inflate.ErrTruncated},
		{"cut inside the sync marker", [][]byte{valid[0][:len(valid[0])-2]}, inflate.ErrTruncated},
		{"stored block shorter than its length", [][]byte{{0, 10, 0, 0xf5, 0xff, 'a'}}, inflate.ErrTruncated},
		{"stored length and complement differ", [][]byte{{0, 10, 0, 0xf4, 0xff}}, inflate.ErrCorrupt},
		{"reserved block type", [][]byte{{0b110, 0, 0, 0, 0}}, inflate.ErrCorrupt},
		{"distance before the stream's start", [][]byte{fixedMatch()}, inflate.ErrCorrupt},
		{"over-subscribed literal/length code", [][]byte{dynamicHeader(new(bitWriter), lengths(257, 257)).syncMarker()}, inflate.ErrCorrupt},
		{"incomplete literal/length code", [][]byte{dynamicHeader(new(bitWriter), lengths(257, 200)).syncMarker()}, inflate.ErrCorrupt},
		{"over 286 literal/length codes", [][]byte{dynamicHeader(new(bitWriter), lengths(287, 256)).syncMarker()}, inflate.ErrCorrupt},
		{"over-subscribed code-length code", [][]byte{new(bitWriter).bits(0b100, 3).bits(0, 10).bits(15, 4).bits(0b001001001001001, 15).bits(0, 45).syncMarker()}, inflate.ErrCorrupt},
		{"data after the final block", [][]byte{append(bytes.Clone(ended.Bytes()), 0, 0, 0, 0xff, 0xff)}, inflate.ErrEnded},
		{"message after the final block", [][]byte{ended.Bytes(), valid[1]}, inflate.ErrEnded},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s inflate.Stream
			var err error
			for _, m := range c.msgs {
				if _, err = s.Message(nil, m); err != nil {
					break
				}
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if _, again := s.Message(nil, valid[0]); again != err {
				t.Errorf("the next message: %v, want the same error", again)
			}
			if c.want == inflate.ErrCorrupt {
				// compress/flate's reader (klauspost's) rejects it too.
				_, kerr := io.ReadAll(flate.NewReader(bytes.NewReader(bytes.Join(c.msgs, nil))))
				if kerr == nil || errors.Is(kerr, io.ErrUnexpectedEOF) {
					t.Errorf("klauspost flate: %v, want a corrupt input error", kerr)
				}
			}
		})
	}
}

// TestDictionary: a back-reference into a Reset's history decodes.
func TestDictionary(t *testing.T) {
	var s inflate.Stream
	s.Reset([]byte("xyz"))
	got, err := s.Message(nil, fixedMatch())
	if err != nil || string(got) != "azaz" {
		t.Fatalf("got %q, %v; want \"azaz\"", got, err)
	}
}

// TestHandWrittenDynamic is the control for TestErrors' hand-written
// dynamic blocks: with a complete code, the same writer makes a valid block.
func TestHandWrittenDynamic(t *testing.T) {
	lens := lengths(257, 255) // literals 0-254
	lens[256] = 8             // and the end of block: 256 codes of 8 bits
	w := dynamicHeader(new(bitWriter), lens)
	w.code('a', 8).code(255, 8) // literal 'a' (the 98th code), end of block (the last)
	msg := w.syncMarker()
	var s inflate.Stream
	if got, err := s.Message(nil, msg); err != nil || string(got) != "a" {
		t.Fatalf("got %q, %v; want \"a\"", got, err)
	}
	if got, err := io.ReadAll(flate.NewReader(bytes.NewReader(msg))); !errors.Is(err, io.ErrUnexpectedEOF) || string(got) != "a" {
		t.Fatalf("klauspost flate: %q, %v; want \"a\" and the stream unfinished", got, err)
	}
}

// TestLimit: output over the limit is an error found while decoding; a
// bomb does not make the Stream allocate its claimed size.
func TestLimit(t *testing.T) {
	const limit = 1 << 20
	zeros := make([]byte, 64<<20)
	for _, w := range []writer{writerNamed("std9"), writerNamed("std0")} { // matches; stored blocks
		t.Run(w.name, func(t *testing.T) {
			comp := compress(t, w, [][]byte{zeros[:limit], zeros[:limit+1]})
			var s inflate.Stream
			s.SetLimit(limit)
			if out, err := s.Message(nil, comp[0]); err != nil || len(out) != limit {
				t.Fatalf("a message of exactly the limit: %d bytes, %v", len(out), err)
			}
			if _, err := s.Message(nil, comp[1]); !errors.Is(err, inflate.ErrTooLarge) {
				t.Fatalf("one byte over: %v, want ErrTooLarge", err)
			}
		})
	}
	bomb := compress(t, writerNamed("std9"), [][]byte{zeros})[0]
	var s inflate.Stream
	s.SetLimit(limit)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := s.Message(nil, bomb)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, inflate.ErrTooLarge) {
		t.Fatalf("a %d MiB bomb: %v, want ErrTooLarge", len(zeros)>>20, err)
	}
	// Doubling from the initial buffer reaches at most twice the limit in
	// total; the claimed 64 MiB are never allocated.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 3*limit {
		t.Errorf("decoding the bomb allocated %d bytes; want at most %d", alloc, 3*limit)
	}
}

// TestFarthestDistance: a match 32,768 bytes back, the farthest deflate
// reaches, copies from the first byte of the previous message's output.
func TestFarthestDistance(t *testing.T) {
	first := make([]byte, 32<<10)
	for i := range first {
		first[i] = byte(i * 7)
	}
	stored := appendStored(nil, first)
	w := new(bitWriter)
	w.bits(0b010, 3)             // not final, fixed
	w.code(0b0000010, 7)         // length 4: symbol 258
	w.code(29, 5).bits(8191, 13) // distance 24577+8191 = 32768
	w.code(0, 7)                 // end of block
	match := w.syncMarker()
	var s inflate.Stream
	if _, err := s.Message(nil, stored); err != nil {
		t.Fatal(err)
	}
	got, err := s.Message(nil, match)
	if err != nil || !bytes.Equal(got, first[:4]) {
		t.Fatalf("got %v, %v; want %v", got, err, first[:4])
	}
}

// appendStored appends p as one non-final stored block (p at most 64 KiB).
func appendStored(b, p []byte) []byte {
	n := len(p)
	b = append(b, 0, byte(n), byte(n>>8), ^byte(n), ^byte(n>>8))
	return append(b, p...)
}
