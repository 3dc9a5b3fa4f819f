package eventsink

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/testutil"
)

// writerGoroutines counts the goroutines running a Writer's loop.
func writerGoroutines() int {
	return bytes.Count(testutil.AllStacks(), []byte("eventsink.(*Writer).loop("))
}

// waitWriterGoroutines polls until want Writer goroutines run, or fails.
func waitWriterGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for n := writerGoroutines(); n != want; n = writerGoroutines() {
		if time.Now().After(deadline) {
			t.Fatalf("%d Writer goroutines, want %d", n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// batchCap is how many Events w's batch slices have room for.
func batchCap(w *Writer) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return cap(w.pending) + cap(w.spare)
}

// TestIdleWriterHoldsNoGoroutine: a Writer holds a goroutine (and batch
// slices) only while it has events to commit, and starts one again for the
// next event.
func TestIdleWriterHoldsNoGoroutine(t *testing.T) {
	const shards = 20
	c := startRedis(t)
	s := newSink(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fence := Fence{"w1", 7}
	writers := make([]*Writer, shards)
	for i := range writers {
		shard := Shard{ID: i, Count: shards}
		grant(t, c, shard, fence)
		writers[i] = s.Open(shard, fence, SessionRecord{}, Rejections{Stopped: func(err error) { t.Errorf("rejected: %v", err) }})
		defer writers[i].Abandon()
	}
	if n := writerGoroutines(); n != 0 {
		t.Fatalf("%d Writer goroutines before any event, want 0", n)
	}
	all := events("S", 1, 20)
	for round, evs := range [][]Event{all[:10], all[10:]} {
		for _, w := range writers {
			if err := addAll(t, ctx, w, evs); err != nil {
				t.Fatal(err)
			}
		}
		// Committed: each goroutine ends right after (polled, not assumed).
		waitWriterGoroutines(t, 0)
		for i, w := range writers {
			if n := batchCap(w); n != 0 {
				t.Fatalf("round %d: idle Writer %d keeps batch slices for %d events, want none", round, i, n)
			}
		}
		t.Logf("round %d: %d idle Writers, no goroutine, no batch slice", round, shards)
	}
	got := readStream(t, c)
	for i := range shards {
		checkExactlyOnce(t, got, i, "S", len(all))
	}
}

// TestWriterEndRacesAdd: events added just as the Writer's goroutine
// decides to end (each Flush returns as the goroutine is about to look
// for more) are committed exactly once, in order, and told to Committed
// once each, whichever side wins.
func TestWriterEndRacesAdd(t *testing.T) {
	const shards, n = 4, 1500
	var seen committedLog
	c := startRedis(t)
	s := newSink(t, c, WithBatch(8, 0), WithCommitted(seen.add))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fence := Fence{"w1", 7}
	var wg sync.WaitGroup
	for i := range shards {
		shard := Shard{ID: i, Count: shards}
		grant(t, c, shard, fence)
		w := s.Open(shard, fence, SessionRecord{}, Rejections{Stopped: func(err error) { t.Errorf("rejected: %v", err) }})
		wg.Go(func() {
			defer w.Abandon()
			for j, ev := range events(fmt.Sprint("S", i), 1, n) {
				if err := w.Add(ctx, ev); err != nil {
					t.Error(err)
					return
				}
				// Vary where the next Add lands against the goroutine's end:
				// at once, after yielding, or after the flush completed.
				switch j % 3 {
				case 1:
					runtime.Gosched()
				case 2:
					if err := w.Flush(ctx); err != nil {
						t.Error(err)
						return
					}
				}
			}
			if err := w.Close(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got := readStream(t, c)
	seen.mu.Lock()
	defer seen.mu.Unlock()
	for i := range shards {
		checkExactlyOnce(t, got, i, fmt.Sprint("S", i), n)
		// Committed runs per shard, so only each shard's order is its.
		if told, stream := ofShard(seen.got, i), ofShard(got, i); !slices.Equal(told, stream) {
			t.Errorf("shard %d: Committed was told %d events, the stream holds %d, or in another order",
				i, len(told), len(stream))
		}
	}
}

// ofShard picks the entries of shard id.
func ofShard(es []entry, id int) []entry {
	var out []entry
	for _, e := range es {
		if e.shard == id {
			out = append(out, e)
		}
	}
	return out
}
