package redislimiter

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Compressed timings used by the tests.
const (
	testWindow = 50 * time.Millisecond
	testMargin = 10 * time.Millisecond
	testHold   = 1 * time.Second
	testPoll   = 100 * time.Millisecond
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// newClient is a client whose ctx deadlines bound socket I/O.
func newClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testOpts(prefix string, mc int) []ConfigOpt {
	return []ConfigOpt{
		WithMaxConcurrency(mc), WithWindow(testWindow), WithMargin(testMargin),
		WithHoldTTL(testHold), WithPollInterval(testPoll), WithTicketTTL(5 * testPoll),
		WithKeyPrefix(prefix), WithGrantLog(true), WithLogger(discard),
	}
}

// newLimiter builds a limiter and closes it when t ends.
func newLimiter(t testing.TB, client redis.UniversalClient, opts ...ConfigOpt) *Limiter {
	t.Helper()
	l := New(client, opts...)
	if err := l.Err(); err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l.Close(ctx)
	})
	settle(t, l)
	return l
}

// settle makes sure the fleet's epoch exists and its first quiet period (one
// window + margin on a Redis without an epoch) is over, so a test starts from a
// running fleet's state.
func settle(t testing.TB, l *Limiter) {
	t.Helper()
	if err := l.runLeave(context.Background(), 0, "settle"); err != nil {
		t.Fatalf("settle: %v", err)
	}
	quiet := scriptKeys(l.cfg.KeyPrefix, 0)[keyQuiet]
	waitFor(t, 10*time.Second, "first quiet period over", func() bool {
		n, err := l.client.Exists(context.Background(), quiet).Result()
		return err == nil && n == 0
	})
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// logRules are what checkLog verifies.
type logRules struct {
	mc       int
	window   time.Duration // at most mc grants in any window
	cooldown time.Duration // window + margin: unlock -> next grant of a bucket
	holdTTL  time.Duration // an unlocked grant blocks its bucket this long
}

func rulesOf(l *Limiter) logRules {
	c := l.Config()
	return logRules{mc: c.MaxConcurrency, window: c.Window, cooldown: c.Window + c.Margin, holdTTL: c.HoldTTL}
}

// checkLog verifies the grant log (server time) and returns the grants:
// per bucket, no grant while another permit is held, the next grant no sooner
// than unlock + cooldown (or grant + holdTTL when never unlocked), FIFO by
// arrival seq; fleet-wide at most mc grants in any window.
func checkLog(t testing.TB, entries []LogEntry, r logRules) []LogEntry {
	t.Helper()
	type state struct {
		held    bool
		grant   LogEntry
		freeAt  int64 // µs: earliest next grant
		lastSeq int64
	}
	buckets := map[int]*state{}
	var grants []LogEntry
	for _, e := range entries {
		s := buckets[e.Bucket]
		if s == nil {
			s = &state{}
			buckets[e.Bucket] = s
		}
		switch e.Event {
		case "grant":
			if s.held && e.Micros < s.grant.Micros+r.holdTTL.Microseconds() {
				t.Errorf("bucket %d: double grant: %s at %d while %s (granted %d) holds",
					e.Bucket, e.Ticket, e.Micros, s.grant.Ticket, s.grant.Micros)
			}
			if s.held {
				s.freeAt = max(s.freeAt, s.grant.Micros+r.holdTTL.Microseconds())
			}
			if e.Micros < s.freeAt {
				t.Errorf("bucket %d: grant at %d is %dµs early (free at %d)", e.Bucket, e.Micros, s.freeAt-e.Micros, s.freeAt)
			}
			if e.Seq <= s.lastSeq {
				t.Errorf("bucket %d: FIFO broken: seq %d granted after seq %d", e.Bucket, e.Seq, s.lastSeq)
			}
			s.lastSeq = e.Seq
			s.held, s.grant = true, e
			grants = append(grants, e)
		case "unlock":
			if !s.held || e.Ticket != s.grant.Ticket {
				t.Errorf("bucket %d: unlock by %s which does not hold", e.Bucket, e.Ticket)
			}
			s.held = false
			s.freeAt = e.Micros + r.cooldown.Microseconds()
		case "revoke":
			if !s.held || e.Ticket != s.grant.Ticket {
				t.Errorf("bucket %d: revoke by %s which does not hold", e.Bucket, e.Ticket)
			}
			s.held = false
			for i := len(grants) - 1; i >= 0; i-- { // never handed out: not a grant
				if grants[i].Ticket == e.Ticket {
					grants = append(grants[:i], grants[i+1:]...)
					break
				}
			}
		case "dataloss":
			buckets = map[int]*state{}
		}
	}
	checkWindow(t, grants, r)
	return grants
}

// checkWindow verifies at most mc grants fleet-wide in any window.
func checkWindow(t testing.TB, grants []LogEntry, r logRules) {
	t.Helper()
	times := make([]int64, 0, len(grants))
	for _, g := range grants {
		times = append(times, g.Micros)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	w := r.window.Microseconds()
	for i := range times {
		if j := i + r.mc; j < len(times) && times[j]-times[i] < w {
			t.Errorf("%d grants within %v starting at %d (max_concurrency %d)", r.mc+1, r.window, times[i], r.mc)
			return
		}
	}
}

func mustLog(t testing.TB, l *Limiter) []LogEntry {
	t.Helper()
	entries, err := l.GrantLog(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatalf("GrantLog: %v", err)
	}
	return entries
}

func countEvents(entries []LogEntry, ev string) int {
	n := 0
	for _, e := range entries {
		if e.Event == ev {
			n++
		}
	}
	return n
}

func uniquePrefix(t testing.TB) string { return fmt.Sprintf("{t-%s}:", randomID()[:8]) }
