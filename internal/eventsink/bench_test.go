package eventsink

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
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
	c := startRedis(b)
	s := newSink(b, c, WithMaxLen(1_000_000))
	fence := Fence{"bench", 1}
	data := json.RawMessage(`{"content":"` + strings.Repeat("x", 250) + `","channel_id":"1","guild_id":"2"}`)
	writers := make([]*Writer, shards)
	for i := range writers {
		sh := Shard{ID: i, Count: shards}
		grant(b, c, sh, fence)
		writers[i] = s.Open(sh, fence, SessionRecord{}, Rejections{})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	per := b.N/shards + 1
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i, w := range writers {
		wg.Go(func() {
			session := fmt.Sprint("S", i)
			for seq := 1; seq <= per; seq++ {
				if err := w.Add(ctx, Event{Type: "MESSAGE_CREATE", Seq: seq, SessionID: session, Data: data}); err != nil {
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
	b.ReportMetric(float64(per*shards)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(per*shards)/float64(s.Stats().Batches), "events/batch")
}
