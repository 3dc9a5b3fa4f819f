package inflate_test

import (
	"bytes"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/flate"

	"github.com/shardfleet/shardfleet/internal/inflate"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// benchStreams are 10,000 MESSAGE_CREATE dispatches compressed three ways:
// as cmd/gatewaybench's stand-in does (klauspost level 1, one stream, a sync
// flush per message), as the fake does (fakesplice: the envelope's head as a
// stored block, the data compressed on its own by klauspost level 1), and
// with compress/flate level 6, a stand-in for zlib's default that Discord
// presumably uses.
func benchStreams(b *testing.B) map[string][][]byte { return benchStreamsT(b) }

func benchStreamsT(b testing.TB) map[string][][]byte {
	msgs := messageCreates(10000)
	return map[string][][]byte{
		"klauspost1": compress(b, writerNamed("klauspost1"), msgs),
		"std6":       compress(b, writerNamed("std6"), msgs),
		"fakesplice": spliced(msgs),
	}
}

// spliced compresses each message as gatewaytest's encodeSpliced does: the
// head up to "d": stored, then the data with a fresh level-1 writer.
func spliced(msgs [][]byte) [][]byte {
	out := make([][]byte, len(msgs))
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(nil, 1)
	for i, m := range msgs {
		head := m[:bytes.Index(m, []byte(`"d":`))+4]
		b := appendStored(nil, head)
		buf.Reset()
		fw.Reset(&buf)
		_, _ = fw.Write(m[len(head):])
		_ = fw.Flush()
		out[i] = append(b, buf.Bytes()...)
	}
	return out
}

func outputSize(comp [][]byte, msgs [][]byte) int64 {
	n := 0
	for _, m := range msgs {
		n += len(m)
	}
	return int64(n / len(comp))
}

// BenchmarkMessage decodes the streams message by message, starting the
// stream over after the last; one op is one message, bytes are its output.
func BenchmarkMessage(b *testing.B) {
	msgs := messageCreates(10000)
	for name, comp := range benchStreams(b) {
		b.Run(name+"/inflate", func(b *testing.B) {
			b.SetBytes(outputSize(comp, msgs))
			b.ReportAllocs()
			var s inflate.Stream
			dst := make([]byte, 0, 4096)
			var err error
			defer reportCPU(b)()
			for i := 0; b.Loop(); i++ {
				if i%len(comp) == 0 {
					s.Reset(nil)
				}
				if dst, err = s.Message(dst[:0], comp[i%len(comp)]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/klauspost", func(b *testing.B) {
			b.SetBytes(outputSize(comp, msgs))
			b.ReportAllocs()
			var src bytes.Reader
			fr := flate.NewReader(&src)
			buf := make([]byte, 0, 128<<10)
			var carry []byte // unread input at the window-wrap edge, as zlib.go keeps it
			defer reportCPU(b)()
			for i := 0; b.Loop(); i++ {
				m := i % len(comp)
				in := comp[m]
				if m == 0 {
					carry = carry[:0]
				}
				if len(carry) > 0 {
					in = append(carry, in...)
				}
				src.Reset(in)
				if m == 0 {
					_ = fr.(flate.Resetter).Reset(&src, nil)
				}
				out, err := readMessage(fr, &src, buf, len(msgs[m]))
				if err != nil {
					b.Fatal(err)
				}
				buf = out[:0]
				carry = append(carry[:0], in[len(in)-src.Len():]...)
			}
		})
	}
}

// readMessage reads one message the way pkg/gateway's zlib.go does: Read
// until the input is used up, with more than 32 KiB of room per Read. Where
// zlib.go checks whether the output is one JSON value (the window-wrap edge)
// it compares the length with the known one, which is cheaper: the baseline
// is not slowed by that check.
func readMessage(r io.Reader, src *bytes.Reader, buf []byte, want int) ([]byte, error) {
	for {
		if cap(buf)-len(buf) <= 32<<10 {
			buf = append(buf[:cap(buf)], make([]byte, cap(buf))...)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			return buf, err
		}
		if src.Len() == 0 || len(buf) == want {
			return buf, nil
		}
	}
}

// reportCPU reports the process's CPU time (user+system) per op, which the
// two shared cores' other load inflates less than ns/op (wall time). Call
// the function it returns when the loop is done.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTableReuse reports how many messages of each stream built
// dynamic tables (dynamic-msgs), and how many of those built the same
// literal/length and distance tables as the stream's previous such message
// (repeats; dist-repeats: the distance table alone): what a cache of the
// last tables would hit; and the mean width of their primary tables
// (lit-width, dist-width: the longest code, at most litBits and distBits).
// Only the last dynamic block of a message is seen; these streams' messages
// hold one. The gatewaybench stream is cmd/gatewaybench's flood: one guild,
// klauspost level 1.
func BenchmarkTableReuse(b *testing.B) {
	streams := benchStreams(b)
	streams["gatewaybench"] = compress(b, writerNamed("klauspost1"), floodMessages(10000))
	streams["std9"] = compress(b, writerNamed("std9"), messageCreates(10000))
	for name, comp := range streams {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				var s inflate.Stream
				var dst []byte
				var err error
				var prev inflate.Tables
				var dynamic, repeats, distRepeats, litWidths, distWidths int
				for _, c := range comp {
					if dst, err = s.Message(dst[:0], c); err != nil {
						b.Fatal(err)
					}
					t, built := inflate.DynamicTables(&s)
					if !built {
						continue
					}
					dynamic++
					litWidths += t.LitWidth
					distWidths += t.DistWidth
					if t.Dist == prev.Dist {
						distRepeats++
						if t.Lit == prev.Lit {
							repeats++
						}
					}
					prev = t
				}
				b.ReportMetric(float64(dynamic), "dynamic-msgs")
				b.ReportMetric(float64(repeats), "repeats")
				b.ReportMetric(float64(distRepeats), "dist-repeats")
				b.ReportMetric(float64(litWidths)/float64(dynamic), "lit-width")
				b.ReportMetric(float64(distWidths)/float64(dynamic), "dist-width")
			}
		})
	}
}

// floodMessages returns n MESSAGE_CREATE dispatches as cmd/gatewaybench's
// flood sends them: one guild, sequence numbers from 2.
func floodMessages(n int) [][]byte {
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = fmt.Appendf(nil, `{"t":"MESSAGE_CREATE","s":%d,"op":0,"d":%s}`, i+2, gatewaytest.MessageCreateData(1300000000000000005, uint64(i)))
	}
	return msgs
}
