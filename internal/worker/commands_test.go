package worker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/lease"
)

func TestParseQueued(t *testing.T) {
	server := int64(1_000_000)
	local := time.Unix(500, 0)
	c := parseQueued([]any{"1-0", []any{"id", "abc", "op", "8", "d", `{"x":1}`, "deadline", "1000500"}}, server, local)
	if c.bad != nil || c.entry != "1-0" || c.id != "abc" || c.op != 8 || string(c.d) != `{"x":1}` || !c.deadline.Equal(local.Add(500*time.Millisecond)) {
		t.Fatalf("parsed %+v", c)
	}
	for _, tc := range []struct {
		fields []any
		bad    string
	}{
		{[]any{"op", "x"}, "not a number"},
		{[]any{"op", "3", "deadline", "soon"}, "not Unix ms"},
		{[]any{"op", "3", "id", "{tag}"}, "want 1-64"},
	} {
		c := parseQueued([]any{"2-0", tc.fields}, server, local)
		if c.bad == nil || !strings.Contains(c.bad.Error(), tc.bad) || c.id == "" {
			t.Errorf("fields %v: %+v, want bad %q and an outcome ID", tc.fields, c, tc.bad)
		}
	}
	if c := parseQueued("garbage", server, local); c.bad == nil {
		t.Error("a malformed entry parsed")
	}
}

// FuzzParseQueued: queue entries come from any sender; none may panic, and
// each has an outcome ID that names a key.
func FuzzParseQueued(f *testing.F) {
	f.Add("1-0", "abc", "8", `{}`, "0")
	f.Add("1-0", "", "x", `[`, "-5")
	f.Fuzz(func(t *testing.T, entry, id, op, d, deadline string) {
		c := parseQueued([]any{entry, []any{"id", id, "op", op, "d", d, "deadline", deadline}}, 1, time.Unix(0, 0))
		if c.bad == nil && !commandIDPattern.MatchString(c.id) {
			t.Fatalf("valid entry with outcome ID %q", c.id)
		}
	})
}

func TestAncestors(t *testing.T) {
	k := func(id, count int) lease.ShardKey { return lease.ShardKey{ID: id, Count: count} }
	l := lease.Layout{Count: 2, Splits: []lease.Split{{Key: k(1, 2), Factor: 2}, {Key: k(3, 4), Factor: 2}}}
	got := ancestors(l, k(7, 8))
	if len(got) != 2 || got[0] != k(3, 4) || got[1] != k(1, 2) {
		t.Fatalf("ancestors of 7/8 = %v, want 3/4 then 1/2", got)
	}
	if got := ancestors(l, k(0, 2)); len(got) != 0 {
		t.Fatalf("ancestors of an unsplit base shard = %v", got)
	}
	op3 := map[string]any{"op": "3", "d": `{"status":"idle"}`}
	if got := splitTargets(l, k(1, 2), k(1, 4), op3); len(got) != 3 {
		t.Fatalf("op 3 of split 1/2 goes to %v, want its 3 current descendants (1/4, 3/8, 7/8)", got)
	}
	guild := map[string]any{"op": "4", "d": `{"guild_id":"` + "29360128" + `"}`} // 7 << 22
	if got := splitTargets(l, k(1, 2), k(1, 4), guild); len(got) != 1 || got[0] != k(7, 8) {
		t.Fatalf("op 4 of guild 7<<22 goes to %v, want 7/8", got)
	}
	if got := splitTargets(l, k(1, 2), k(1, 4), map[string]any{"op": "9"}); len(got) != 1 || got[0] != k(1, 4) {
		t.Fatalf("an invalid command goes to %v, want here (to be rejected)", got)
	}
}

// FuzzWakeCommands: a cmdev message comes from any publisher; none may
// panic (a count of 0 would divide by zero when looking for the shards a
// split shard became).
func FuzzWakeCommands(f *testing.F) {
	f.Add("4:1")
	f.Add("0:0")
	f.Add("2:-1")
	f.Add(":")
	f.Fuzz(func(t *testing.T, name string) {
		w := &Worker{shards: map[lease.ShardKey]*shardRun{}}
		for _, k := range []lease.ShardKey{{ID: 1, Count: 4}, {ID: 3, Count: 4}, {ID: 5, Count: 8}} {
			ctx, stop := context.WithCancel(context.Background())
			stop() // a stopped loop: a wake-up starts no goroutine
			w.shards[k] = &shardRun{key: k, cmd: &commandRun{ctx: ctx, stop: stop, wake: make(chan struct{}, 1)}}
		}
		w.wakeCommands(name)
	})
}
