package eventsink

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/internal/testutil"
)

// leasedSink starts a Redis and a Sink (batches of 16, no linger) with shard
// 0/1 leased to w1 under token 7, then opts; ctx ends with the test, within 20 s.
func leasedSink(t *testing.T, opts ...Option) (*redis.Client, *Sink, context.Context, Shard, Fence) {
	t.Helper()
	c := startRedis(t)
	s := newSink(t, c, append([]Option{WithBatch(16, 0)}, opts...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	shard, fence := Shard{ID: 0, Count: 1}, Fence{"w1", 7}
	grant(t, c, shard, fence)
	return c, s, ctx, shard, fence
}

// stoppedWith waits for the error a Writer's Stopped reported on ch.
func stoppedWith(t *testing.T, ctx context.Context, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		t.Fatal("the Writer never stopped")
		return nil
	}
}

// addAll adds evs to w and flushes them.
func addAll(t *testing.T, ctx context.Context, w *Writer, evs []Event) error {
	t.Helper()
	for _, ev := range evs {
		if err := w.Add(ctx, ev); err != nil {
			return err
		}
	}
	return w.Flush(ctx)
}

// TestWriterDetectsRollback: Redis loses the last committed events of the
// Writer's session (a lagging replica promoted): the next commit writes
// nothing and reports the durable seq, so the owner can RESUME from it.
func TestWriterDetectsRollback(t *testing.T) {
	c, s, ctx, shard, fence := leasedSink(t)
	stopped := make(chan error, 1)
	w := s.Open(shard, fence, SessionRecord{}, Rejections{Stopped: func(err error) { stopped <- err }})
	defer w.Abandon()
	if err := addAll(t, ctx, w, events("S1", 1, 10)); err != nil {
		t.Fatal(err)
	}
	keys := lease.NewKeys(prefix)
	if y, err := testutil.RollBack(ctx, c, keys.Session(shard), keys.ShardEvents(shard), 4); err != nil || y != 6 {
		t.Fatalf("roll back: %d, %v", y, err)
	}
	_ = addAll(t, ctx, w, events("S1", 11, 12))
	var rb *RollbackError
	if err := stoppedWith(t, ctx, stopped); !errors.As(err, &rb) {
		t.Fatalf("Stopped got %v, want a *RollbackError", err)
	}
	if rb.Session != "S1" || rb.Durable != 6 || rb.Expected != 10 || rb.Shard != shard || rb.ResumeURL == "" {
		t.Fatalf("rollback = %+v; want S1 durable at 6 of 10, with its resume URL", rb)
	}
	if !Rejected(rb) {
		t.Fatal("a rollback must stop the Writer")
	}
	checkExactlyOnce(t, readStream(t, c), 0, "S1", 6) // 11 and 12 not written past the hole
}

// TestWriterOpenedFromARecordSeesItRolledBack: a Writer opened from the record
// a new owner resumed from detects that Redis holds less than that.
func TestWriterOpenedFromARecordSeesItRolledBack(t *testing.T) {
	c, s, ctx, shard, fence := leasedSink(t)
	if _, err := s.Commit(ctx, shard, fence, events("S1", 1, 5)); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	w := s.Open(shard, fence, SessionRecord{SessionID: "S1", Sequence: 8}, Rejections{Stopped: func(err error) { stopped <- err }})
	defer w.Abandon()
	_ = addAll(t, ctx, w, events("S1", 9, 9))
	var rb *RollbackError
	if err := stoppedWith(t, ctx, stopped); !errors.As(err, &rb) || rb.Durable != 5 || rb.Expected != 8 {
		t.Fatalf("Stopped got %v, want durable 5 of 8", err)
	}
	// From the durable seq, as a RESUME replays it, the Writer commits.
	w2 := s.Open(shard, fence, SessionRecord{SessionID: "S1", Sequence: 5}, Rejections{Stopped: func(err error) { t.Errorf("stopped: %v", err) }})
	defer w2.Abandon()
	if err := addAll(t, ctx, w2, events("S1", 6, 9)); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, readStream(t, c), 0, "S1", 9)
}

// TestWriterStartsALostRecordAfresh: after a Redis data loss the record is
// gone: nothing of the session is durable, and the Writer goes on from the
// current batch (counted) instead of stopping the shard.
func TestWriterStartsALostRecordAfresh(t *testing.T) {
	c, s, ctx, shard, fence := leasedSink(t)
	w := s.Open(shard, fence, SessionRecord{}, Rejections{Stopped: func(err error) { t.Errorf("stopped: %v", err) },
		Rebuild: func() { t.Error("a sink without a cache asked for a rebuild") }})
	defer w.Abandon()
	if err := addAll(t, ctx, w, events("S1", 1, 10)); err != nil {
		t.Fatal(err)
	}
	loseRecord(t, ctx, c, shard)
	if err := addAll(t, ctx, w, events("S1", 11, 12)); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.LostRecords != 1 || st.Rejected != 0 {
		t.Fatalf("stats %+v; want 1 lost record, no rejection", st)
	}
	got := readStream(t, c)
	if len(got) != 2 || got[0].seq != 11 || got[1].seq != 12 {
		t.Fatalf("stream after the loss: %+v; want seqs 11 and 12", got)
	}
	if rec, err := s.Session(ctx, shard); err != nil || rec.SessionID != "S1" || rec.Sequence != 12 {
		t.Fatalf("record = %+v, %v; want S1 at 12", rec, err)
	}
}

// TestWriterAsksForARebuildWhenTheCacheIsLost: with a cache, a lost record
// lost the shard's cached guilds too: the Writer goes on as without one
// (nothing more is lost from the stream) and asks its owner, once, for a new
// session to rebuild them.
func TestWriterAsksForARebuildWhenTheCacheIsLost(t *testing.T) {
	c, s, ctx, shard, fence := leasedSink(t, WithCache(cacheAll))
	var rebuilds atomic.Int32
	w := s.Open(shard, fence, SessionRecord{}, Rejections{Stopped: func(err error) { t.Errorf("stopped: %v", err) },
		Rebuild: func() { rebuilds.Add(1) }})
	defer w.Abandon()
	if err := addAll(t, ctx, w, events("S1", 1, 10)); err != nil {
		t.Fatal(err)
	}
	if n := rebuilds.Load(); n != 0 {
		t.Fatalf("%d rebuilds before any loss", n)
	}
	loseRecord(t, ctx, c, shard)
	if err := addAll(t, ctx, w, events("S1", 11, 12)); err != nil {
		t.Fatal(err)
	}
	if n := rebuilds.Load(); n != 1 {
		t.Fatalf("%d rebuilds after the record was lost; want 1", n)
	}
	loseRecord(t, ctx, c, shard)
	if err := addAll(t, ctx, w, events("S1", 13, 14)); err != nil {
		t.Fatal(err)
	}
	if n := rebuilds.Load(); n != 1 {
		t.Fatalf("%d rebuilds after a second loss; want 1 per Writer", n)
	}
	if got := readStream(t, c); len(got) != 2 || got[0].seq != 13 || got[1].seq != 14 {
		t.Fatalf("stream after the second loss: %+v; want seqs 13 and 14", got)
	}
}

// loseRecord deletes shard's session record and stream, as a Redis data loss
// does (the lease survives, as when its holder re-asserted it).
func loseRecord(t *testing.T, ctx context.Context, c *redis.Client, shard Shard) {
	t.Helper()
	keys := lease.NewKeys(prefix)
	if err := c.Del(ctx, keys.Session(shard), keys.ShardEvents(shard)).Err(); err != nil {
		t.Fatal(err)
	}
}
