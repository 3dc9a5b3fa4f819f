package eventsink

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/faultproxy"
	"github.com/shardfleet/shardfleet/internal/redistest"
)

// P4, retry idempotency under a real retry: the proxy lets a batch's script
// reach Redis and loses its reply, the batch is committed again (by go-redis,
// or by the Writer's own retry when go-redis does not retry), and every event
// must be in the stream once, with the resume point right.

// proxiedRedis is a redis-server, a client straight to it (set-up and reads),
// a fault proxy in front of it, and a client through the proxy with
// maxRetries (go-redis's MaxRetries: -1 disables its retries).
func proxiedRedis(t *testing.T, maxRetries int) (srv *redistest.Server, direct, client *redis.Client, p *faultproxy.Proxy) {
	t.Helper()
	srv = redistest.Start(t)
	direct = srv.Client(t)
	p, err := faultproxy.New(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	// A reset on read is a net.Error that is not a timeout: go-redis's
	// shouldRetry retries it (and the EOF go-redis may report instead),
	// ContextTimeoutEnabled or not.
	client = redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: maxRetries, ContextTimeoutEnabled: true,
		DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
	t.Cleanup(func() { _ = client.Close() })
	// A pooled connection, so that the first reply under test is not a HELLO.
	if err := client.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("ping through the proxy: %v", err)
	}
	return srv, direct, client, p
}

func TestCommitRetriedAfterLostReply(t *testing.T) {
	srv, direct, client, p := proxiedRedis(t, 2)
	s := newSink(t, client)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	shard, fence := Shard{ID: 1, Count: 4}, Fence{"w1", 1700000000000001}
	grant(t, direct, shard, fence)
	if _, err := s.Commit(ctx, shard, fence, events("S1", 1, 5)); err != nil {
		t.Fatal(err)
	}

	var res Result
	ran := srv.LostReply(t, p, commitScript, func() (err error) {
		res, err = s.Commit(ctx, shard, fence, events("S1", 6, 15))
		return err
	})
	if ran["xadd"] != 10 {
		t.Fatalf("XADD ran %d times for 10 events, want 10: the replay wrote again (ran %v)", ran["xadd"], ran)
	}
	checkExactlyOnce(t, readStream(t, direct), shard.ID, "S1", 15)
	// The replay answers the resume point the first run left. It reports
	// the batch as duplicates (Committed 0): it cannot tell its own lost run
	// from a RESUME replay, and Stats.Duplicates counts retries by design.
	if res.LastSeq != 15 {
		t.Fatalf("Commit answered %+v, want LastSeq 15", res)
	}
	if st := s.Stats(); st.Committed+st.Duplicates != 15 || st.Batches != 2 {
		t.Fatalf("stats %+v: want 15 events accounted for in 2 batches", st)
	}
	rec, err := s.Session(ctx, shard)
	if err != nil || rec.SessionID != "S1" || rec.Sequence != 15 {
		t.Fatalf("session record %+v (%v), want S1 at 15", rec, err)
	}
}

// The Writer, the way workers commit: whoever replays the lost batch
// (go-redis, or the Writer's own retry when go-redis may not), its events
// are in the stream once and LastSeq is the last of them.
func TestWriterBatchRetriedAfterLostReply(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxRetries int
	}{
		{"go-redis retries", 2},
		{"writer retries", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, direct, client, p := proxiedRedis(t, tc.maxRetries)
			// One batch: the Writer lingers 500 ms after the first Add, far
			// longer than adding 20 events takes.
			var seen committedLog
			s := newSink(t, client, WithBatch(64, 500*time.Millisecond), WithRetryBackoff(time.Millisecond, 10*time.Millisecond),
				WithLogger(slog.New(slog.DiscardHandler)), WithCommitted(seen.add))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			shard, fence := Shard{ID: 0, Count: 1}, Fence{"w1", 42}
			grant(t, direct, shard, fence)
			w := s.Open(shard, fence, SessionRecord{}, Rejections{Stopped: func(err error) { t.Errorf("rejected: %v", err) }})
			defer w.Abandon()

			ran := srv.LostReply(t, p, commitScript, func() error {
				for _, ev := range events("S9", 1, 20) {
					if err := w.Add(ctx, ev); err != nil {
						return err
					}
				}
				return w.Flush(ctx)
			})
			if ran["xadd"] != 20 {
				t.Fatalf("XADD ran %d times for 20 events, want 20 (ran %v)", ran["xadd"], ran)
			}
			checkExactlyOnce(t, readStream(t, direct), shard.ID, "S9", 20)
			// Whoever replayed it, the batch was committed once: its
			// events are told once each.
			seen.check(t, readStream(t, direct))
			if w.LastSeq() != 20 {
				t.Fatalf("LastSeq = %d, want 20", w.LastSeq())
			}
			if rec, err := s.Session(ctx, shard); err != nil || rec.Sequence != 20 {
				t.Fatalf("session record %+v (%v), want seq 20", rec, err)
			}
			wantErrs := uint64(0)
			if tc.maxRetries < 0 {
				wantErrs = 1 // the Writer saw the reset and replayed the batch itself
			}
			if st := s.Stats(); st.RedisErrors != wantErrs {
				t.Fatalf("stats %+v: want %d Redis errors", st, wantErrs)
			}
		})
	}
}
