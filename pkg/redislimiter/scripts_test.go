package redislimiter

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/internal/redistest"
)

// snapshot is every value the scripts of bucket b may write, without TTLs.
func snapshot(t *testing.T, l *Limiter, b int) map[string]any {
	t.Helper()
	ctx := context.Background()
	k := scriptKeys(l.cfg.KeyPrefix, b)
	out := map[string]any{}
	var err error
	if out["hold"], err = l.client.HGetAll(ctx, k[keyHold]).Result(); err != nil {
		t.Fatal(err)
	}
	if out["queue"], err = l.client.ZRangeWithScores(ctx, k[keyQueue], 0, -1).Result(); err != nil {
		t.Fatal(err)
	}
	if out["deadlines"], err = l.client.ZRange(ctx, k[keyDeadlines], 0, -1).Result(); err != nil {
		t.Fatal(err)
	}
	out["seq"], _ = l.client.Get(ctx, k[keySeq]).Result()
	out["budget"], _ = l.client.HGetAll(ctx, k[keyBudget]).Result()
	if out["log"], err = l.client.XLen(ctx, k[keyLog]).Result(); err != nil {
		t.Fatal(err)
	}
	out["epoch"], _ = l.client.HGetAll(ctx, k[keyEpoch]).Result()
	return out
}

// scriptReply is a script's reply: refusal.Code is "" when it succeeded,
// values is then its reply.
type scriptReply struct {
	refusal keyspace.Refusal
	values  []any
}

func (r scriptReply) ok() bool { return r.refusal.Code == "" }

// runScript executes script with ticket on bucket 0, as the limiter would.
func runScript(t *testing.T, l *Limiter, which string, ticket string) scriptReply {
	t.Helper()
	ctx := context.Background()
	keys := scriptKeys(l.cfg.KeyPrefix, 0)
	args := l.commonArgs(0, ticket)
	var reply []any
	var err error
	switch which {
	case "acquire":
		args = append(args, l.cfg.HoldTTL.Milliseconds(), l.cfg.TicketTTL.Milliseconds(), l.cfg.BudgetReserve)
		reply, err = acquireScript.Run(ctx, l.client, keys, args...).Slice()
	case "unlock":
		args = append(args, (l.cfg.Window + l.cfg.Margin).Microseconds())
		reply, err = unlockScript.Run(ctx, l.client, keys, args...).Slice()
	case "leave":
		reply, err = leaveScript.Run(ctx, l.client, keys, args...).Slice()
	}
	if r, refused := keyspace.ParseRefusal(err); refused {
		return scriptReply{refusal: r}
	}
	if err != nil {
		t.Fatalf("%s: %v", which, err)
	}
	return scriptReply{values: reply}
}

// field is the named field of a refusal's detail.
func (r scriptReply) field(t *testing.T, name string) string {
	t.Helper()
	f, err := refusalFields(r.refusal, name)
	if err != nil {
		t.Fatal(err)
	}
	return f[0]
}

// twice runs a script, then runs it again as a go-redis retry would, and
// checks that the replay returns the same reply and changes nothing.
func twice(t *testing.T, l *Limiter, which, ticket string, sameReply bool) scriptReply {
	t.Helper()
	first := runScript(t, l, which, ticket)
	before := snapshot(t, l, 0)
	second := runScript(t, l, which, ticket)
	if sameReply && !reflect.DeepEqual(first, second) {
		t.Fatalf("%s replay: reply %v, first run %v", which, second, first)
	}
	if after := snapshot(t, l, 0); !reflect.DeepEqual(before, after) {
		t.Fatalf("%s replay changed state:\nbefore %v\nafter  %v", which, before, after)
	}
	return first
}

// TestScriptsIdempotent: every mutating script run twice with the same ticket
// gives the same result and leaves the same state (go-redis retries).
func TestScriptsIdempotent(t *testing.T) {
	s := redistest.Start(t)
	l := newLimiter(t, newClient(t, s.Addr()), testOpts(uniquePrefix(t), 1)...)
	if err := l.SetBudget(context.Background(), 100, time.Minute); err != nil {
		t.Fatal(err)
	}
	if r := twice(t, l, "acquire", "holder", true); !r.ok() {
		t.Fatalf("acquire on a free bucket: %v, want granted", r)
	}
	// A waiter's replay keeps its place (same seq); only its deadline moves,
	// which snapshot leaves out.
	w1 := runScript(t, l, "acquire", "waiter")
	w2 := runScript(t, l, "acquire", "waiter")
	if w1.refusal.Code != refuseWait || w1.field(t, "seq") != w2.field(t, "seq") {
		t.Fatalf("waiter replay: %v then %v, want waiting with the same seq", w1, w2)
	}
	if r := twice(t, l, "unlock", "holder", true); !r.ok() {
		t.Fatalf("unlock by the holder: %v", r)
	}
	if r := twice(t, l, "unlock", "stranger", true); r.refusal.Code != refuseNotHeld {
		t.Fatalf("unlock by a stranger: %v, want a no-op", r)
	}
	twice(t, l, "leave", "waiter", false)
	if n := queueLen(t, l, 0); n != 0 {
		t.Fatalf("queue has %d after leave", n)
	}
	st, _, _ := l.Budget(context.Background())
	if st.Remaining != 99 {
		t.Fatalf("budget %d after one grant replayed, want 99", st.Remaining)
	}
	if n := countEvents(mustLog(t, l), "grant"); n != 1 {
		t.Fatalf("%d grants logged, want 1", n)
	}
}

// TestLeaveRevokesUndeliveredGrant: a grant whose caller gave up (ctx ended
// while the script ran) is revoked: the bucket is free at once, the budget is
// refunded, and the replay is a no-op.
func TestLeaveRevokesUndeliveredGrant(t *testing.T) {
	s := redistest.Start(t)
	l := newLimiter(t, newClient(t, s.Addr()), testOpts(uniquePrefix(t), 1)...)
	if err := l.SetBudget(context.Background(), 50, time.Minute); err != nil {
		t.Fatal(err)
	}
	if r := runScript(t, l, "acquire", "lost"); !r.ok() {
		t.Fatalf("acquire: %v", r)
	}
	if r := twice(t, l, "leave", "lost", false); r.values[1] != int64(1) {
		t.Fatalf("leave of a granted ticket: %v, want revoked", r)
	}
	if r := runScript(t, l, "acquire", "next"); !r.ok() {
		t.Fatalf("acquire after a revoke: %v, want granted at once", r)
	}
	st, _, _ := l.Budget(context.Background())
	if st.Remaining != 49 {
		t.Fatalf("budget %d, want 49 (the revoked grant refunded)", st.Remaining)
	}
	checkLog(t, mustLog(t, l), rulesOf(l))
}
