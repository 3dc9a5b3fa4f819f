package eventsink

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// BenchmarkWriterThroughput measures events committed per second by one
// worker's Writers (one per shard, all in parallel) into a local redis-server,
// with ~300-byte MESSAGE_CREATE payloads:
//
//	go test -run '^$' -bench WriterThroughput -benchtime 200000x ./internal/eventsink
func BenchmarkWriterThroughput(b *testing.B) {
	for _, shards := range []int{1, 8} {
		b.Run(fmt.Sprintf("shards=%d", shards), func(b *testing.B) {
			benchWriters(b, shards)
		})
	}
}

func benchWriters(b *testing.B, shards int) {
	data := json.RawMessage(`{"content":"` + strings.Repeat("x", 250) + `","channel_id":"1","guild_id":"2"}`)
	benchWritersOf(b, shards, nil, func(int) (string, json.RawMessage) { return "MESSAGE_CREATE", data })
}

// benchWritersOf commits b.N events of next (by seq, from 1) through one
// Writer per shard, all in parallel, into a sink with opts; it reports
// events/s and the redis-server's CPU per event.
func benchWritersOf(b *testing.B, shards int, opts []Option, next func(seq int) (string, json.RawMessage)) {
	c := startRedis(b)
	s := newSink(b, c, append([]Option{WithMaxLen(1_000_000)}, opts...)...)
	fence := Fence{"bench", 1}
	writers := make([]*Writer, shards)
	for i := range writers {
		sh := Shard{ID: i, Count: shards}
		grant(b, c, sh, fence)
		writers[i] = s.Open(sh, fence, SessionRecord{}, Rejections{})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	per := b.N/shards + 1
	cpu0 := redisCPU(b, c)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i, w := range writers {
		wg.Go(func() {
			session := fmt.Sprint("S", i)
			for seq := 1; seq <= per; seq++ {
				typ, data := next(seq)
				if err := w.Add(ctx, Event{Type: typ, Seq: seq, SessionID: session, Data: data}); err != nil {
					b.Error(err)
					return
				}
			}
			if err := w.Close(ctx); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if got := s.Stats().Committed; got != uint64(per*shards) {
		b.Fatalf("committed %d, want %d", got, per*shards)
	}
	if st := s.Stats(); st.CacheErrors != 0 {
		b.Fatalf("%d cache errors", st.CacheErrors)
	}
	b.ReportMetric(float64(per*shards)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(per*shards)/float64(s.Stats().Batches), "events/batch")
	b.ReportMetric((redisCPU(b, c)-cpu0)*1e6/float64(per*shards), "redis-cpu-µs/event")
}

// redisCPU is the CPU time (user + system, seconds) redis-server has used.
func redisCPU(b *testing.B, c *redis.Client) float64 {
	info, err := c.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for line := range strings.SplitSeq(info, "\r\n") {
		for _, f := range []string{"used_cpu_sys:", "used_cpu_user:"} {
			if v, ok := strings.CutPrefix(line, f); ok {
				x, err := strconv.ParseFloat(v, 64)
				if err != nil {
					b.Fatalf("INFO cpu %q: %v", line, err)
				}
				total += x
			}
		}
	}
	return total
}
