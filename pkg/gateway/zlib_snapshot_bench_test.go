package gateway

import (
	"bytes"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/s2"
	"github.com/shardfleet/shardfleet/internal/inflate"
)

// BenchmarkSnapshotCodec compares ways to keep a released stream's 32 KiB of
// history (the window of BenchmarkZlibIdleRelease's gateway messages):
// snapshot-B is what an idle connection keeps, ns/op one compress and one
// decompress. It is how snapshotLevel was chosen.
func BenchmarkSnapshotCodec(b *testing.B) {
	const maxWindow = 32 << 10 // deflate's: the history a release keeps
	rng := rand.New(rand.NewPCG(13, 13))
	var all []byte
	for _, m := range farReferences(40, rng) {
		all = append(all, m...)
	}
	win := all[len(all)-maxWindow:]
	codecs := map[string]struct {
		enc func([]byte) []byte
		dec func(dst, src []byte) ([]byte, error)
	}{
		"flate1":   {flateSnapshot(1), inflateSnapshot},
		"flate2":   {flateSnapshot(2), inflateSnapshot},
		"s2":       {func(w []byte) []byte { return s2.Encode(nil, w) }, func(dst, src []byte) ([]byte, error) { return s2.Decode(dst[:cap(dst)], src) }},
		"s2better": {func(w []byte) []byte { return s2.EncodeBetter(nil, w) }, func(dst, src []byte) ([]byte, error) { return s2.Decode(dst[:cap(dst)], src) }},
	}
	for _, name := range []string{"flate1", "flate2", "s2", "s2better"} {
		c := codecs[name]
		b.Run(name, func(b *testing.B) {
			dst := make([]byte, 0, 2*maxWindow)
			var snap []byte
			for b.Loop() {
				snap = c.enc(win)
				out, err := c.dec(dst, snap)
				if err != nil || !bytes.Equal(out, win) {
					b.Fatalf("%d bytes back, %v", len(out), err)
				}
			}
			b.ReportMetric(float64(len(snap)), "snapshot-B")
		})
	}
}

// flateSnapshot is compressWindow at another level, its writer kept.
func flateSnapshot(level int) func([]byte) []byte {
	var out bytes.Buffer
	fw, _ := flate.NewWriter(&out, level)
	return func(w []byte) []byte {
		out.Reset()
		fw.Reset(&out)
		fw.Write(w)
		fw.Flush()
		return bytes.Clone(out.Bytes())
	}
}

func inflateSnapshot(dst, src []byte) ([]byte, error) {
	inf := getStream(-1)
	defer putStream(inf)
	return inf.Message(dst[:0], src)
}

// BenchmarkDecoderHeap: the heap a busy zlib-stream connection's decoder
// holds (KiB/decoder), internal/inflate's Stream against the klauspost
// flate reader it replaced, each after one message; ns/op is meaningless.
func BenchmarkDecoderHeap(b *testing.B) {
	msg := bytes.Repeat([]byte(`{"op":0,"t":"MESSAGE_CREATE","d":{"content":"hello world"}} `), 1000)
	comp := flateSnapshot(5)(msg)
	const n = 200
	out := make([]byte, 0, 2*len(msg))
	for _, name := range []string{"inflate", "klauspost"} {
		b.Run(name, func(b *testing.B) {
			var perDecoder float64
			for b.Loop() {
				keep := make([]any, n)
				before := heapInUse()
				for i := range keep {
					if name == "inflate" {
						s := new(inflate.Stream)
						_, _ = s.Message(out[:0], comp)
						keep[i] = s
						continue
					}
					fr := flate.NewReader(bytes.NewReader(comp))
					_, _ = io.ReadFull(fr, out[:len(msg)])
					keep[i] = fr
				}
				perDecoder = float64(heapInUse()-before) / n / 1024
				runtime.KeepAlive(keep)
			}
			b.ReportMetric(perDecoder, "KiB/decoder")
		})
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
