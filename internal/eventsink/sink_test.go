package eventsink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const prefix = "{test}:"

// grant makes fence the valid holder of shard's lease, as internal/lease would.
func grant(t testing.TB, c redis.UniversalClient, shard Shard, fence Fence) {
	t.Helper()
	k := lease.NewKeys(prefix)
	ctx := context.Background()
	if err := c.HSet(ctx, k.Lease(shard), "owner", fence.WorkerID, "token", strconv.FormatUint(fence.Token, 10)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, k.Member(fence.WorkerID), `{"id":"`+fence.WorkerID+`"}`, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
}

// openGranted opens s's Writer for shard 0 of 1, its lease granted to w1
// (token 7); the Writer is abandoned when the test ends.
func openGranted(t testing.TB, c redis.UniversalClient, s *Sink) *Writer {
	t.Helper()
	shard, fence := Shard{ID: 0, Count: 1}, Fence{"w1", 7}
	grant(t, c, shard, fence)
	w := s.Open(shard, fence, SessionRecord{}, Rejections{})
	t.Cleanup(w.Abandon)
	return w
}

func events(session string, from, to int) []Event {
	var out []Event
	for seq := from; seq <= to; seq++ {
		typ := "MESSAGE_CREATE"
		if seq == 1 {
			typ = "READY"
		}
		out = append(out, Event{Type: typ, Seq: seq, SessionID: session, ResumeURL: "ws://resume/" + session,
			Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, seq))})
	}
	return out
}

type entry struct {
	shard, seq int
	session    string
	typ        string
}

func readStream(t testing.TB, c redis.UniversalClient) []entry {
	t.Helper()
	msgs, err := c.XRange(context.Background(), lease.NewKeys(prefix).Events(0), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]entry, 0, len(msgs))
	for _, m := range msgs {
		shard, _ := strconv.Atoi(m.Values["shard"].(string))
		seq, _ := strconv.Atoi(m.Values["seq"].(string))
		out = append(out, entry{shard, seq, m.Values["session"].(string), m.Values["type"].(string)})
	}
	return out
}

// checkExactlyOnce asserts that the stream holds seqs 1..n of session for shard, once each, in order.
func checkExactlyOnce(t testing.TB, got []entry, shard int, session string, n int) {
	t.Helper()
	next := 1
	for _, e := range got {
		if e.shard != shard || e.session != session {
			continue
		}
		if e.seq != next {
			t.Fatalf("shard %d session %s: got seq %d, want %d (stream: %v)", shard, session, e.seq, next, got)
		}
		next++
	}
	if next != n+1 {
		t.Fatalf("shard %d session %s: stream ends at seq %d, want %d", shard, session, next-1, n)
	}
}

func newSink(t testing.TB, c redis.UniversalClient, opts ...Option) *Sink {
	t.Helper()
	s, err := New(c, append([]Option{WithPrefix(prefix)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCommitExactlyOnceUnderReplays(t *testing.T) {
	c := startRedis(t)
	s := newSink(t, c)
	ctx := context.Background()
	shard, fence := Shard{ID: 3, Count: 8}, Fence{"w1", 1700000000000001}
	grant(t, c, shard, fence)

	if r, err := s.Commit(ctx, shard, fence, events("S1", 1, 10)); err != nil || r.Committed != 10 || r.LastSeq != 10 {
		t.Fatalf("first batch: %+v %v", r, err)
	}
	// A RESUME replays 6..10 and goes on to 15; a go-redis retry re-runs a batch.
	if r, err := s.Commit(ctx, shard, fence, events("S1", 6, 15)); err != nil || r.Committed != 5 || r.LastSeq != 15 {
		t.Fatalf("replay batch: %+v %v", r, err)
	}
	if r, err := s.Commit(ctx, shard, fence, events("S1", 6, 15)); err != nil || r.Committed != 0 || r.LastSeq != 15 {
		t.Fatalf("re-run batch: %+v %v", r, err)
	}
	checkExactlyOnce(t, readStream(t, c), 3, "S1", 15)

	st, err := s.Session(ctx, shard)
	if err != nil || st.SessionID != "S1" || st.Sequence != 15 || st.ResumeURL != "ws://resume/S1" {
		t.Fatalf("session record = %+v, %v; want S1 at 15", st, err)
	}
	if got := s.Stats(); got.Committed != 15 || got.Duplicates != 15 || got.Batches != 3 {
		t.Fatalf("stats = %+v", got)
	}
}

func TestCommitFenced(t *testing.T) {
	c := startRedis(t)
	s := newSink(t, c)
	ctx := context.Background()
	shard := Shard{ID: 0, Count: 1}
	owner := Fence{"w1", 10}
	grant(t, c, shard, owner)
	if _, err := s.Commit(ctx, shard, owner, events("S1", 1, 3)); err != nil {
		t.Fatal(err)
	}
	k := lease.NewKeys(prefix)
	tests := []struct {
		name  string
		fence Fence
		setup func()
	}{
		{"older token", Fence{"w1", 9}, func() {}},
		{"other worker", Fence{"w2", 10}, func() { grant(t, c, shard, Fence{"w2", 11}); grant(t, c, shard, owner) }},
		{"newer owner took over", owner, func() { grant(t, c, shard, Fence{"w2", 11}) }},
		{"membership expired", Fence{"w3", 12}, func() {
			grant(t, c, shard, Fence{"w3", 12})
			c.Del(ctx, k.Member("w3"))
		}},
		{"lease released", owner, func() { c.Del(ctx, k.Lease(shard)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup()
			_, err := s.Commit(ctx, shard, tt.fence, events("S1", 4, 6))
			if !errors.Is(err, ErrFenced) || !Rejected(err) {
				t.Fatalf("err = %v, want ErrFenced", err)
			}
		})
	}
	checkExactlyOnce(t, readStream(t, c), 0, "S1", 3)
	if st, _ := s.Session(ctx, shard); st.Sequence != 3 {
		t.Fatalf("record seq moved to %d by a fenced writer", st.Sequence)
	}
}

func TestCommitNewSessionResetsRecord(t *testing.T) {
	c := startRedis(t)
	s := newSink(t, c)
	ctx := context.Background()
	shard, fence := Shard{ID: 1, Count: 2}, Fence{"w1", 5}
	grant(t, c, shard, fence)
	if _, err := s.Commit(ctx, shard, fence, events("S1", 1, 100)); err != nil {
		t.Fatal(err)
	}
	// op 9 false, then IDENTIFY: a new session whose seqs restart at 1.
	if r, err := s.Commit(ctx, shard, fence, events("S2", 1, 7)); err != nil || r.Committed != 7 || r.LastSeq != 7 {
		t.Fatalf("new session: %+v %v", r, err)
	}
	// Late events of the old session are refused, not interleaved.
	if _, err := s.Commit(ctx, shard, fence, events("S1", 101, 102)); !errors.Is(err, ErrStaleSession) {
		t.Fatalf("old session after reset: err = %v, want ErrStaleSession", err)
	}
	got := readStream(t, c)
	checkExactlyOnce(t, got, 1, "S1", 100)
	checkExactlyOnce(t, got, 1, "S2", 7)
	st, _ := s.Session(ctx, shard)
	if st.SessionID != "S2" || st.Sequence != 7 || st.ResumeURL != "ws://resume/S2" {
		t.Fatalf("record = %+v, want S2 at 7", st)
	}
	// An empty record (e.g. after Redis lost its data) adopts the session.
	c.Del(ctx, lease.NewKeys(prefix).Session(shard))
	if r, err := s.Commit(ctx, shard, fence, events("S2", 8, 9)); err != nil || r.Committed != 2 {
		t.Fatalf("adopt: %+v %v", r, err)
	}
	if _, err := s.Commit(ctx, shard, fence, append(events("S2", 10, 10), events("S3", 11, 11)...)); !errors.Is(err, ErrMixedSessions) {
		t.Fatalf("mixed batch: err = %v", err)
	}
}

func TestCommitCapsStream(t *testing.T) {
	c := startRedis(t)
	s := newSink(t, c, WithMaxLen(50))
	ctx := context.Background()
	shard, fence := Shard{ID: 0, Count: 1}, Fence{"w1", 1}
	grant(t, c, shard, fence)
	for from := 1; from <= 2000; from += 200 {
		if _, err := s.Commit(ctx, shard, fence, events("S1", from, from+199)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := c.XLen(ctx, lease.NewKeys(prefix).Events(0)).Result()
	if err != nil {
		t.Fatal(err)
	}
	// MAXLEN ~ trims whole macro nodes (stream-node-max-entries, 100 by default).
	if n < 50 || n > 50+100 {
		t.Fatalf("XLEN = %d after 2000 events with MAXLEN ~ 50", n)
	}
}

func TestNewValidates(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	for field, opt := range map[string]Option{
		"MaxLen":          WithMaxLen(-1),
		"BatchSize":       WithBatch(0, 0),
		"FlushInterval":   WithBatch(1, -time.Second),
		"MaxPending":      WithMaxPending(0),
		"MaxPendingBytes": WithMaxPendingBytes(0, nil),
		"RetryBackoffMin": WithRetryBackoff(time.Second, time.Millisecond),
		"Logger":          WithLogger(nil),
	} {
		var ce *ConfigError
		if _, err := New(c, opt); !errors.As(err, &ce) || ce.Field != field {
			t.Errorf("%s: err = %v", field, err)
		}
	}
	if _, err := New(nil); err == nil {
		t.Error("nil client accepted")
	}
}

func TestWriterBatchesInOrder(t *testing.T) {
	c := startRedis(t)
	s := newSink(t, c, WithBatch(64, time.Millisecond), WithMaxPending(100))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	shards := []Shard{{ID: 0, Count: 2}, {ID: 1, Count: 2}}
	fence := Fence{"w1", 7}
	for _, sh := range shards {
		grant(t, c, sh, fence)
	}
	const n = 3000
	for _, sh := range shards {
		w := s.Open(sh, fence, SessionRecord{}, Rejections{Stopped: func(err error) { t.Errorf("rejected: %v", err) }})
		for _, ev := range events(fmt.Sprint("S", sh.ID), 1, n) {
			if err := w.Add(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		// A replay after RESUME reaches the writer too; it must not show.
		for _, ev := range events(fmt.Sprint("S", sh.ID), n-50, n) {
			if err := w.Add(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if w.LastSeq() != n {
			t.Fatalf("LastSeq = %d, want %d", w.LastSeq(), n)
		}
		if err := w.Add(ctx, events("S", 1, 1)[0]); !errors.Is(err, ErrClosed) {
			t.Fatalf("Add after Close: %v", err)
		}
	}
	got := readStream(t, c)
	for _, sh := range shards {
		checkExactlyOnce(t, got, sh.ID, fmt.Sprint("S", sh.ID), n)
	}
	if st := s.Stats(); st.Batches >= 2*n/10 {
		t.Fatalf("%d script calls for %d events: not batching", st.Batches, 2*n)
	}
}

// committedLog records what Config.Committed is told.
type committedLog struct {
	mu  sync.Mutex
	got []entry
}

func (l *committedLog) add(shard Shard, evs []Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range evs {
		l.got = append(l.got, entry{shard: shard.ID, seq: ev.Seq, session: ev.SessionID, typ: ev.Type})
	}
}

// check compares what was told with the stream: the same events, once
// each, in the same order.
func (l *committedLog) check(t testing.TB, stream []entry) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !slices.Equal(l.got, stream) {
		t.Fatalf("Committed was told %v,\nthe stream holds %v", l.got, stream)
	}
}

func TestWriterStopsWhenFenced(t *testing.T) {
	var seen committedLog
	c, s, ctx, shard, fence := leasedSink(t, WithCommitted(seen.add))
	rejected := make(chan error, 1)
	w := s.Open(shard, fence, SessionRecord{}, Rejections{Stopped: func(err error) { rejected <- err }})
	defer w.Abandon()
	for _, ev := range events("S1", 1, 10) {
		if err := w.Add(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	grant(t, c, shard, Fence{"w2", 8}) // the lease moved on
	_ = w.Add(ctx, events("S1", 11, 11)[0])
	select {
	case err := <-rejected:
		if !errors.Is(err, ErrFenced) {
			t.Fatalf("onReject got %v", err)
		}
	case <-ctx.Done():
		t.Fatal("onReject never called")
	}
	if err := w.Add(ctx, events("S1", 12, 12)[0]); !errors.Is(err, ErrFenced) {
		t.Fatalf("Add after rejection: %v", err)
	}
	if err := w.Flush(ctx); !errors.Is(err, ErrFenced) {
		t.Fatalf("Flush after rejection: %v", err)
	}
	checkExactlyOnce(t, readStream(t, c), 0, "S1", 10)
	// The refused events were never told: only the 10 in the stream were.
	seen.check(t, readStream(t, c))
}

func TestWriterRetriesThroughRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ReadTimeout: 100 * time.Millisecond,
		WriteTimeout: 100 * time.Millisecond, DialTimeout: 100 * time.Millisecond, MaxRetries: 1})
	defer c.Close()
	s := newSink(t, c, WithRetryBackoff(5*time.Millisecond, 50*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	shard, fence := Shard{ID: 0, Count: 1}, Fence{"w1", 7}
	grant(t, c, shard, fence)
	var rejected atomic.Bool
	w := s.Open(shard, fence, SessionRecord{}, Rejections{Stopped: func(error) { rejected.Store(true) }})
	defer w.Abandon()
	srv.Pause()
	for _, ev := range events("S1", 1, 50) {
		if err := w.Add(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	// Poll until a commit attempt has failed, so the outage was really seen.
	for s.Stats().RedisErrors == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("no Redis error seen while paused")
		case <-time.After(5 * time.Millisecond):
		}
	}
	srv.Resume()
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if rejected.Load() {
		t.Fatal("rejected")
	}
	checkExactlyOnce(t, readStream(t, c), 0, "S1", 50)
}

func startRedis(t testing.TB) *redis.Client { return redistest.Start(t).Client(t) }

// TestCommitOnCluster: the script's keys share the prefix's hash tag, so it
// runs on Redis Cluster (a CROSSSLOT error otherwise).
func TestCommitOnCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	c := cl.Client(t)
	s := newSink(t, c)
	ctx := context.Background()
	shard, fence := Shard{ID: 5, Count: 8}, Fence{"w1", 42}
	grant(t, c, shard, fence)
	if r, err := s.Commit(ctx, shard, fence, events("S1", 1, 20)); err != nil || r.Committed != 20 {
		t.Fatalf("commit on cluster: %+v %v", r, err)
	}
	checkExactlyOnce(t, readStream(t, c), 5, "S1", 20)
}

// TestWriterRetriesFencedWhileAsked: after Redis lost the lease key, the
// holder re-asserts it; meanwhile a Writer told to retry keeps its events and
// commits them once the lease is valid again, nothing before.
func TestWriterRetriesFencedWhileAsked(t *testing.T) {
	c := startRedis(t)
	s := newSink(t, c, WithRetryBackoff(5*time.Millisecond, 20*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	shard, fence := Shard{ID: 0, Count: 1}, Fence{"w1", 7}
	var asked atomic.Int32
	w := s.Open(shard, fence, SessionRecord{}, Rejections{
		Retry:   func(error) bool { asked.Add(1); return true },
		Stopped: func(err error) { t.Errorf("stopped: %v", err) },
	})
	defer w.Abandon()
	for _, ev := range events("S1", 1, 5) {
		if err := w.Add(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	for asked.Load() < 2 {
		select {
		case <-ctx.Done():
			t.Fatal("Retry never asked")
		case <-time.After(5 * time.Millisecond):
		}
	}
	if n, _ := c.XLen(ctx, lease.NewKeys(prefix).Events(0)).Result(); n != 0 {
		t.Fatalf("%d events written without a valid lease", n)
	}
	grant(t, c, shard, fence) // re-asserted
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, readStream(t, c), 0, "S1", 5)
}

// heldCounter is a ByteCounter that keeps the sum.
type heldCounter struct{ n atomic.Int64 }

func (h *heldCounter) Add(delta int64) { h.n.Add(delta) }

// gateCounter is a ByteCounter that holds every release (a negative Add)
// until released is closed, and says on releasing that one started.
type gateCounter struct {
	n         atomic.Int64
	releasing chan struct{} // capacity 1
	released  chan struct{}
}

func (g *gateCounter) Add(delta int64) {
	if delta < 0 {
		select {
		case g.releasing <- struct{}{}:
		default:
		}
		<-g.released
	}
	g.n.Add(delta)
}

// TestFlushReturnsAfterTheCounterIsTold: the counter hears of a commit's
// release before Flush returns, so a caller that flushed reads a counter
// without the flushed events. (It heard after, and
// TestWriterAddBlocksOnByteBound once read 97 bytes left after Flush.)
func TestFlushReturnsAfterTheCounterIsTold(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	g := &gateCounter{releasing: make(chan struct{}, 1), released: make(chan struct{})}
	s := newSink(t, c, WithMaxPendingBytes(1<<20, g))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w := openGranted(t, c, s)
	release := sync.OnceFunc(func() { close(g.released) })
	defer release() // before the cleanup's Abandon, which waits for a held release
	if err := w.Add(ctx, events("S1", 1, 1)[0]); err != nil {
		t.Fatal(err)
	}
	flushed := make(chan error, 1)
	go func() { flushed <- w.Flush(ctx) }()
	select {
	case <-g.releasing: // committed; the counter is being told
	case <-ctx.Done():
		t.Fatal("the commit never released its bytes")
	}
	// Not a condition to wait for: a bounded look for an early return,
	// which came within microseconds when the release was told after the
	// waiters were woken.
	select {
	case err := <-flushed:
		t.Fatalf("Flush returned (%v) while the counter still held the flushed bytes", err)
	case <-time.After(100 * time.Millisecond):
	}
	release()
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if n := g.n.Load(); n != 0 {
		t.Fatalf("counter holds %d bytes after Flush", n)
	}
}

// TestWriterAddBlocksOnByteBound: while Redis refuses writes, Add takes
// events until the Writer holds MaxPendingBytes, then blocks; the counter
// sees every held byte, and gets them all back once Redis commits them.
func TestWriterAddBlocksOnByteBound(t *testing.T) {
	const bound, size = 1000, 100
	srv := redistest.Start(t)
	c := srv.Client(t)
	held := &heldCounter{}
	s := newSink(t, c, WithMaxPendingBytes(bound, held), WithBatch(4, 0))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w := openGranted(t, c, s)
	if _, err := srv.Do(ctx, "CLIENT", "PAUSE", "60000", "WRITE"); err != nil {
		t.Fatal(err)
	}
	// An ended ctx makes Add a probe: it returns nil if there is room and
	// the ctx's error if it would block.
	ended, end := context.WithCancel(ctx)
	end()
	evs := events("S1", 1, 2*bound/size)
	for i := range evs {
		evs[i].Data = json.RawMessage(fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i+1, strings.Repeat("x", size-20)))
	}
	accepted := 0
	for _, ev := range evs {
		if err := w.Add(ended, ev); err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Fatal(err)
			}
			break
		}
		accepted++
	}
	if n := held.n.Load(); n < bound || n >= bound+size {
		t.Fatalf("Writer holds %d bytes when Add blocks, want [%d, %d)", n, bound, bound+size)
	}
	if accepted == len(evs) {
		t.Fatal("Add never blocked")
	}
	if _, err := srv.Do(ctx, "CLIENT", "UNPAUSE"); err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs[accepted:] {
		if err := w.Add(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := held.n.Load(); n != 0 {
		t.Fatalf("counter holds %d bytes after Flush", n)
	}
	checkExactlyOnce(t, readStream(t, c), 0, "S1", len(evs))
}
