package redislimiter

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/faultproxy"
	"github.com/shardfleet/shardfleet/internal/redistest"
	"github.com/shardfleet/shardfleet/internal/testutil"
)

// P4, retry idempotency under a real retry: the proxy lets a script's request
// reach Redis and loses its reply, go-redis runs the script again, and the
// caller's answer must match the state, with the grant, the budget and the
// cooldown each applied once (TestScriptsIdempotent replays by hand).

// retryRig is a redis-server, a fault proxy in front of it, and a limiter
// whose client goes through the proxy and retries (MaxRetries 2). Its
// notification subscription goes through the proxy too; pushes are not
// replies, so the proxy never cuts them.
type retryRig struct {
	srv   *redistest.Server
	proxy *faultproxy.Proxy
	l     *Limiter
	warns *testutil.LogBuffer // the limiter's warnings
}

func newRetryRig(t *testing.T) *retryRig {
	t.Helper()
	srv := redistest.Start(t)
	p, err := faultproxy.New(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	// A reset on read is a net.Error that is not a timeout: go-redis's
	// shouldRetry retries it (and the EOF go-redis may report instead),
	// ContextTimeoutEnabled or not.
	c := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: 2, ContextTimeoutEnabled: true,
		DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
	t.Cleanup(func() { _ = c.Close() })
	r := &retryRig{srv: srv, proxy: p, warns: &testutil.LogBuffer{}}
	log := slog.New(slog.NewTextHandler(r.warns, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r.l = newLimiter(t, c, append(testOpts(uniquePrefix(t), 1), WithLogger(log))...)
	if err := r.l.SetBudget(ctxT(t, 5*time.Second), 100, time.Minute); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *retryRig) lostReply(t *testing.T, script redistest.LoadableScript, op func() error) map[string]int64 {
	t.Helper()
	return r.srv.LostReply(t, r.proxy, script, op)
}

func (r *retryRig) budget(t *testing.T) int {
	t.Helper()
	st, ok, err := r.l.Budget(ctxT(t, 5*time.Second))
	if err != nil || !ok {
		t.Fatalf("budget: %v (stored %v)", err, ok)
	}
	return st.Remaining
}

func (r *retryRig) hold(t *testing.T) map[string]string {
	t.Helper()
	h, err := r.l.client.HGetAll(context.Background(), holdKey(r.l.cfg.KeyPrefix, 0)).Result()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// grantsOf counts the log's events of kind ev for ticket.
func grantsOf(entries []LogEntry, ev, ticket string) int {
	n := 0
	for _, e := range entries {
		if e.Event == ev && e.Ticket == ticket {
			n++
		}
	}
	return n
}

// A grant whose reply is lost: the replay finds the ticket holding the bucket
// and answers the same grant; the budget and the grant log move once.
func TestGrantRetriedAfterLostReply(t *testing.T) {
	r := newRetryRig(t)
	ctx := ctxT(t, 20*time.Second)
	ran := r.lostReply(t, acquireScript, func() error { return r.l.WaitBucket(ctx, 0) })
	r.l.mu.Lock()
	ticket, held := r.l.holders[0]
	r.l.mu.Unlock()
	if !held {
		t.Fatal("WaitBucket returned, but the limiter does not hold bucket 0")
	}
	if h := r.hold(t); h["t"] != ticket || h["u"] != "0" {
		t.Fatalf("hold in Redis %v; the caller holds ticket %s", h, ticket)
	}
	entries := mustLog(t, r.l)
	if n := grantsOf(entries, "grant", ticket); n != 1 || countEvents(entries, "grant") != 1 {
		t.Fatalf("%d grants for the ticket (%d in all), want 1: %v", n, countEvents(entries, "grant"), entries)
	}
	if rem := r.budget(t); rem != 99 || ran["hincrby"] != 1 {
		t.Fatalf("budget %d after one grant of 100 (HINCRBY ran %d times)", rem, ran["hincrby"])
	}
	if ran["incr"] != 1 {
		t.Fatalf("arrival seq taken %d times, want 1 (ran %v)", ran["incr"], ran)
	}
	checkLog(t, entries, rulesOf(r.l))
}

// A waiter's acquire whose reply is lost: the replay keeps its place in the
// queue (one seq), it is not granted while another ticket holds the bucket.
func TestQueuedAcquireRetriedAfterLostReply(t *testing.T) {
	r := newRetryRig(t)
	if res := runScript(t, r.l, "acquire", "holder"); !res.ok() {
		t.Fatalf("holder: %v, want granted", res)
	}
	var res acquireResult
	ran := r.lostReply(t, acquireScript, func() (err error) {
		res, err = r.l.acquire(context.Background(), 0, "waiter")
		return err
	})
	if res.status != statusWait {
		t.Fatalf("waiter: %+v, want to wait", res)
	}
	seq, err := r.l.client.ZScore(context.Background(), scriptKeys(r.l.cfg.KeyPrefix, 0)[keyQueue], "waiter").Result()
	if err != nil || int64(seq) != res.seq || ran["incr"] != 1 {
		t.Fatalf("queued at seq %v (%v), the caller got %d; seq taken %d times", seq, err, res.seq, ran["incr"])
	}
	if n := queueLen(t, r.l, 0); n != 1 {
		t.Fatalf("%d waiters queued, want 1", n)
	}
	if h := r.hold(t); h["t"] != "holder" {
		t.Fatalf("hold %v, want the holder's", h)
	}
}

// An unlock whose reply is lost: the replay finds the cooldown set and
// answers the same end; one cooldown, one unlock in the log, no warning.
func TestUnlockRetriedAfterLostReply(t *testing.T) {
	r := newRetryRig(t)
	ctx := ctxT(t, 20*time.Second)
	if err := r.l.WaitBucket(ctx, 0); err != nil {
		t.Fatal(err)
	}
	r.l.mu.Lock()
	ticket := r.l.holders[0]
	r.l.mu.Unlock()
	ran := r.lostReply(t, unlockScript, func() error {
		r.l.UnlockBucket(0) // logs a warning on an error or on "not held"
		return nil
	})
	if w := r.warns.String(); w != "" {
		t.Fatalf("UnlockBucket warned through a retried unlock: %s", w)
	}
	if ran["hset"] != 1 || ran["pexpireat"] != 1 {
		t.Fatalf("cooldown written %d times (expiry %d), want once (ran %v)", ran["hset"], ran["pexpireat"], ran)
	}
	entries := mustLog(t, r.l)
	if n := grantsOf(entries, "unlock", ticket); n != 1 || countEvents(entries, "unlock") != 1 {
		t.Fatalf("%d unlocks logged, want 1: %v", n, entries)
	}
	var unlockAt int64
	for _, e := range entries {
		if e.Event == "unlock" {
			unlockAt = e.Micros
		}
	}
	cooldown := (r.l.cfg.Window + r.l.cfg.Margin).Microseconds()
	if h := r.hold(t); h["t"] != ticket || h["u"] != strconv.FormatInt(unlockAt+cooldown, 10) {
		t.Fatalf("hold %v; want ticket %s cooling down until %d (unlock at %d + %d µs)",
			h, ticket, unlockAt+cooldown, unlockAt, cooldown)
	}
	checkLog(t, entries, rulesOf(r.l))
}

// leave of a granted ticket whose caller never got the permit: the first run
// revokes it and refunds the budget; the replay finds nothing to revoke.
func TestLeaveRetriedAfterLostReply(t *testing.T) {
	r := newRetryRig(t)
	ctx := context.Background()
	if res := runScript(t, r.l, "acquire", "lost"); !res.ok() {
		t.Fatalf("acquire: %v", res)
	}
	if rem := r.budget(t); rem != 99 {
		t.Fatalf("budget %d after a grant, want 99", rem)
	}
	ran := r.lostReply(t, leaveScript, func() error { return r.l.runLeave(ctx, 0, "lost") })
	if rem := r.budget(t); rem != 100 || ran["hincrby"] != 1 {
		t.Fatalf("budget %d after the revoke (HINCRBY ran %d times), want 100: refunded once", rem, ran["hincrby"])
	}
	entries := mustLog(t, r.l)
	if n := countEvents(entries, "revoke"); n != 1 {
		t.Fatalf("%d revokes logged, want 1: %v", n, entries)
	}
	if h := r.hold(t); len(h) != 0 {
		t.Fatalf("hold %v after the revoke, want the bucket free", h)
	}
	if res := runScript(t, r.l, "acquire", "next"); !res.ok() {
		t.Fatalf("acquire after the revoke: %v, want granted at once", res)
	}
	checkLog(t, mustLog(t, r.l), rulesOf(r.l))

	// leave of a queued waiter: removed once, the holder untouched.
	if res := runScript(t, r.l, "acquire", "waiter"); res.refusal.Code != refuseWait {
		t.Fatalf("waiter: %v, want to wait", res)
	}
	ran = r.lostReply(t, leaveScript, func() error { return r.l.runLeave(ctx, 0, "waiter") })
	if n := queueLen(t, r.l, 0); n != 0 || ran["zrem"] != 2 {
		t.Fatalf("%d waiters left, ZREM ran %d times; want the waiter removed once (queue and deadline)", n, ran["zrem"])
	}
	if h := r.hold(t); h["t"] != "next" || h["u"] != "0" {
		t.Fatalf("hold %v, want the holder's grant untouched", h)
	}
}
