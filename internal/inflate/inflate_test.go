// The tests are an external package: gatewaytest imports pkg/gateway, which
// is to import this package.
package inflate_test

import (
	"bytes"
	stdflate "compress/flate"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/disgoorg/snowflake/v2"
	"github.com/klauspost/compress/flate"

	"github.com/shardfleet/shardfleet/internal/inflate"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// flusher is what both flate packages' writers offer.
type flusher interface {
	io.Writer
	Flush() error
}

// A writer makes a stream the way Discord does: one writer, a sync flush
// after each message.
type writer struct {
	name string
	new  func(io.Writer) flusher
}

func writers() []writer {
	var ws []writer
	for level := -2; level <= 9; level++ {
		ws = append(ws, writer{"std" + strconv.Itoa(level), func(w io.Writer) flusher {
			fw, err := stdflate.NewWriter(w, level)
			if err != nil {
				panic(err)
			}
			return fw
		}})
		ws = append(ws, writer{"klauspost" + strconv.Itoa(level), func(w io.Writer) flusher {
			fw, err := flate.NewWriter(w, level)
			if err != nil {
				panic(err)
			}
			return fw
		}})
	}
	return ws
}

func writerNamed(name string) writer {
	for _, w := range writers() {
		if w.name == name {
			return w
		}
	}
	panic("no writer " + name)
}

// compress returns each message's deflate data, compressed as one stream
// with a sync flush after each.
func compress(t testing.TB, w writer, msgs [][]byte) [][]byte {
	t.Helper()
	var buf bytes.Buffer
	fw := w.new(&buf)
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		if _, err := fw.Write(m); err != nil {
			t.Fatal(err)
		}
		if err := fw.Flush(); err != nil {
			t.Fatal(err)
		}
		out[i] = bytes.Clone(buf.Bytes())
		buf.Reset()
	}
	return out
}

// messageCreates returns n gateway MESSAGE_CREATE dispatches as the fake
// sends them (about 860 bytes each).
func messageCreates(n int) [][]byte {
	msgs := make([][]byte, n)
	for i := range msgs {
		g := uint64(1 + i%3)
		if i%10 == 0 {
			g = 0 // a DM now and then
		}
		msgs[i] = fmt.Appendf(nil, `{"t":"MESSAGE_CREATE","s":%d,"op":0,"d":%s}`, i+1, gatewaytest.MessageCreateData(snowflakeID(g), uint64(i)))
	}
	return msgs
}

// decodeAll decodes the messages with one Stream, each output checked
// against want.
func decodeAll(t *testing.T, s *inflate.Stream, comp, want [][]byte) {
	t.Helper()
	var dst []byte
	for i, c := range comp {
		var err error
		dst, err = s.Message(dst[:0], c)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !bytes.Equal(dst, want[i]) {
			t.Fatalf("message %d: got %d bytes, want %d (first difference at %d)", i, len(dst), len(want[i]), firstDiff(dst, want[i]))
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// corpora are message sets that exercise the decoder's paths.
func corpora() map[string][][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([][]byte, 40)
	repetitive := make([][]byte, 40)
	for i := range random {
		random[i] = make([]byte, rng.IntN(3000))
		for j := range random[i] {
			random[i][j] = byte(rng.Uint32())
		}
		// Runs: long matches (258) and overlapping copies (distance < length).
		repetitive[i] = bytes.Repeat([]byte{byte(i), byte(i >> 1), 'a'}[:1+i%3], rng.IntN(5000))
	}
	// A message repeating, 32 KiB later, what an earlier message held:
	// back-references reaching across messages, up to the window's edge.
	far := make([]byte, 32<<10)
	for j := range far {
		far[j] = byte(rng.Uint32())
	}
	window := [][]byte{far[:1000], far[1000:], far[:1000], {}, far[:500]}
	return map[string][][]byte{
		"messagecreate": messageCreates(300),
		"random":        random,
		"repetitive":    repetitive,
		"window":        window,
	}
}

// TestMatchesWriters decodes streams from both flate packages' writers at
// every level, a sync flush after each message, and checks that they hold
// every block type.
func TestMatchesWriters(t *testing.T) {
	var types [4]int // by the first block's type
	for name, msgs := range corpora() {
		for _, w := range writers() {
			t.Run(name+"/"+w.name, func(t *testing.T) {
				comp := compress(t, w, msgs)
				for _, c := range comp {
					types[c[0]>>1&3]++
				}
				decodeAll(t, new(inflate.Stream), comp, msgs)
			})
		}
	}
	if types[0] == 0 || types[1] == 0 || types[2] == 0 {
		t.Errorf("messages starting with a stored, fixed, dynamic block: %v; want each", types[:3])
	}
}

// TestLargeMessage decodes a GUILD_CREATE-sized message (about 3.5 MB)
// between small ones: the buffer grows for it and is given back after.
func TestLargeMessage(t *testing.T) {
	big := bytes.Join(messageCreates(4000), []byte(","))
	msgs := [][]byte{[]byte("{"), big, []byte("}"), messageCreates(1)[0]}
	for _, w := range []writer{writerNamed("klauspost1"), writerNamed("std6")} {
		t.Run(w.name, func(t *testing.T) {
			decodeAll(t, new(inflate.Stream), compress(t, w, msgs), msgs)
		})
	}
}

// TestHistoryReset continues a stream in a new Stream from History: the
// next messages decode as they do in the original, including
// back-references 32 KiB back.
func TestHistoryReset(t *testing.T) {
	for name, msgs := range corpora() {
		w := writerNamed("std6") // reaches the whole window
		comp := compress(t, w, msgs)
		t.Run(name, func(t *testing.T) {
			for _, n := range []int{1, 2, len(msgs) / 2, len(msgs) - 1} {
				var s inflate.Stream
				decodeAll(t, &s, comp[:n], msgs[:n])
				var resumed inflate.Stream
				resumed.Reset(bytes.Clone(s.History()))
				decodeAll(t, &resumed, comp[n:], msgs[n:])
			}
		})
	}
}

func snowflakeID(g uint64) snowflake.ID { return snowflake.ID(g) }
