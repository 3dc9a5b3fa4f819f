package gateway

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// messageCreate returns a MESSAGE_CREATE dispatch of about 850 bytes, shaped
// like Discord's (ids, author, flags, a sentence of content).
func messageCreate(seq int, rng *rand.Rand) []byte {
	id := 1300000000000000000 + rng.Int64N(1e17)
	words := []string{"shard", "gateway", "resume", "the", "a", "lease", "fence", "redis", "hello", "zombie", "event", "bot"}
	var content bytes.Buffer
	for content.Len() < 40 {
		content.WriteString(words[rng.IntN(len(words))])
		content.WriteByte(' ')
	}
	return fmt.Appendf(nil, `{"t":"MESSAGE_CREATE","s":%d,"op":0,"d":{"type":0,"tts":false,"timestamp":"2026-11-27T17:00:00.000000+00:00",`+
		`"pinned":false,"nonce":"%d","mentions":[],"mention_roles":[],"mention_everyone":false,"member":{"roles":["%d"],`+
		`"premium_since":null,"pending":false,"nick":null,"mute":false,"joined_at":"2024-01-01T00:00:00.000000+00:00","flags":0,`+
		`"deaf":false,"communication_disabled_until":null,"banner":null,"avatar":null},"id":"%d","flags":0,"embeds":[],`+
		`"edited_timestamp":null,"content":%q,"components":[],"channel_type":0,"channel_id":"%d","author":{"username":"user%d",`+
		`"public_flags":0,"id":"%d","global_name":"User %d","discriminator":"0",`+
		`"avatar":"%032x"},"attachments":[],"guild_id":"%d"}}`,
		seq, id, id+1, id+2, content.String(), id+3, seq%1000, id+4, seq%1000, rng.Uint64(), id+5)
}

// recordZlibStream compresses n events as Discord would: one zlib stream, a
// sync flush after each message.
func recordZlibStream(b testing.TB, n int) (frames [][]byte, raw int) {
	rng := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	for i := range n {
		m := messageCreate(i+1, rng)
		raw += len(m)
		buf.Reset()
		zw.Write(m)
		zw.Flush()
		frames = append(frames, bytes.Clone(buf.Bytes()))
	}
	return frames, raw
}

// BenchmarkDispatchZlibStream measures one connection's receive path, in
// process: zlib-stream transport, envelope decoder, sequence tracking, the
// copy of d, the FIFO and the dispatcher goroutine calling the handler. Run
// with -cpu 1 for events/s per core (both goroutines share the core).
func BenchmarkDispatchZlibStream(b *testing.B) {
	const stream = 10000
	frames, raw := recordZlibStream(b, stream)
	b.Logf("%d events, %d bytes raw (%d per event), %d compressed", stream, raw, raw/stream, totalLen(frames))
	var handled atomic.Int64
	g := New("token", func(Gateway, EventType, int, json.RawMessage) { handled.Add(1) },
		// A shared budget, as the worker's, so its atomic add is measured; no
		// bound is reached (the connection is not attached to pause).
		WithURL("ws://127.0.0.1:1"), WithBacklogBytes(1<<40), WithBacklogBudget(NewBacklogBudget(1<<40))).(*gatewayImpl)
	r := newRun(g, nil)
	ctx, cancel := context.WithCancel(context.Background())
	c := newConnection(ctx, cancel, r, nil, newTransport(CompressionZlibStream, -1))
	b.SetBytes(int64(raw / stream))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := range b.N {
		k := i % stream
		if k == 0 && i > 0 {
			// A new stream numbers its dispatches from 1 again: a new
			// session, or the seq check would drop them as going backwards.
			c.tr.close()
			c.tr = newTransport(CompressionZlibStream, -1)
			g.clearSession()
		}
		if err := c.processFrame(true, frames[k]); err != nil {
			b.Fatal(err)
		}
	}
	for handled.Load() < int64(b.N) {
		// The dispatcher is still running the tail of the queue; it is part of the cost.
		runtimeGosched()
	}
	b.StopTimer()
	reportRates(b, cpu0)
	r.disp.stop()
	<-r.disp.done
	c.tr.close()
	cancel()
	r.cancel()
}

// BenchmarkDispatchNaiveZlib is the baseline the issue quotes: compress/zlib
// through an io.Pipe and encoding/json decoding the envelope with d as a
// RawMessage, handler called inline.
func BenchmarkDispatchNaiveZlib(b *testing.B) {
	const stream = 10000
	frames, raw := recordZlibStream(b, stream)
	b.SetBytes(int64(raw / stream))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	done := 0
	for done < b.N {
		pr, pw := io.Pipe()
		go func() {
			for _, f := range frames {
				pw.Write(f)
			}
			pw.Close()
		}()
		zr, err := zlib.NewReader(pr)
		if err != nil {
			b.Fatal(err)
		}
		dec := json.NewDecoder(zr)
		for ; done < b.N; done++ {
			var env struct {
				Op int             `json:"op"`
				S  *int            `json:"s"`
				T  *string         `json:"t"`
				D  json.RawMessage `json:"d"`
			}
			if err := dec.Decode(&env); err != nil {
				if err == io.EOF || err == io.ErrUnexpectedEOF {
					break
				}
				b.Fatal(err)
			}
		}
		pr.CloseWithError(io.EOF)
	}
	b.StopTimer()
	reportRates(b, cpu0)
}

// BenchmarkDecodeEnvelope is the envelope decoder alone on one event.
func BenchmarkDecodeEnvelope(b *testing.B) {
	msg := messageCreate(1, rand.New(rand.NewPCG(3, 4)))
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeEnvelope(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func totalLen(frames [][]byte) int {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	return n
}

func runtimeGosched() { runtime.Gosched() }

// cpuTime is the CPU time (user+system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRates reports events per wall-clock second and per CPU-second. On a
// shared machine the second one is the "per core" figure: it does not count
// time spent waiting for another process's turn on the CPU.
func reportRates(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	}
}
