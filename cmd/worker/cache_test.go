package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/cache"
	"github.com/shardfleet/shardfleet/internal/eventsink"
	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/internal/redistest"
)

// TestCacheCommand: guilds of two shards committed through the sink are
// printed by `worker cache dump` (all, or one guild through the layout's
// routing) and counted by `worker cache stats`.
func TestCacheCommand(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	ctx := context.Background()
	keys := lease.NewKeys("cc")
	cfg := cache.Config{Kinds: cache.Guilds | cache.Channels | cache.Members}
	sink, err := eventsink.New(c, eventsink.WithPrefix("cc"), eventsink.WithCache(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.HSet(ctx, keys.Layout(), "version", 1, "data", `{"count":2}`).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, keys.CacheKinds(), cfg.Kinds.String(), 0).Err(); err != nil {
		t.Fatal(err)
	}
	// Guild 4194304 (1 << 22) is on shard 1 of 2, guild 8388608 on shard 0.
	for _, g := range []struct {
		id    uint64
		shard int
	}{{4194304, 1}, {8388608, 0}} {
		shard, fence := eventsink.Shard{ID: g.shard, Count: 2}, eventsink.Fence{WorkerID: "w", Token: 1}
		if err := c.HSet(ctx, keys.Lease(shard), "owner", "w", "token", "1").Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.Set(ctx, keys.Member("w"), "{}", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		id := strconv.FormatUint(g.id, 10)
		_, err := sink.Commit(ctx, shard, fence, []eventsink.Event{
			{Type: "READY", Seq: 1, SessionID: "S" + id, Data: json.RawMessage(`{"guilds":[{"id":"` + id + `"}]}`)},
			{Type: "GUILD_CREATE", Seq: 2, SessionID: "S" + id, Data: json.RawMessage(`{"id":"` + id + `","name":"g` + id +
				`","channels":[{"id":"1","name":"c"}],"members":[{"user":{"id":"2"}},{"user":{"id":"3"}}],"roles":[{"id":"9"}]}`)},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	env := envOf("REDIS_URL", srv.URL(), "KEY_PREFIX", "cc")
	var out, errOut bytes.Buffer
	if code := runCache([]string{"dump"}, env, &out, &errOut); code != exitOK {
		t.Fatalf("dump: code %d: %s", code, errOut.String())
	}
	want := `{"guilds":{
	  "4194304":{"guild":{"id":"4194304","name":"g4194304"},"channels":{"1":{"id":"1","name":"c"}},"members":{"2":{"user":{"id":"2"}},"3":{"user":{"id":"3"}}}},
	  "8388608":{"guild":{"id":"8388608","name":"g8388608"},"channels":{"1":{"id":"1","name":"c"}},"members":{"2":{"user":{"id":"2"}},"3":{"user":{"id":"3"}}}}}}`
	if diffs, err := cache.Diff([]byte(want), out.Bytes(), cfg.Kinds); err != nil || len(diffs) > 0 {
		t.Fatalf("dump differs (%v):\n%s\n%s", err, strings.Join(diffs, "\n"), out.String())
	}
	if strings.Contains(out.String(), `"roles"`) {
		t.Fatalf("dump shows a kind the cache does not keep:\n%s", out.String())
	}
	out.Reset()
	if code := runCache([]string{"dump", "-guild", "4194304"}, env, &out, &errOut); code != exitOK {
		t.Fatalf("dump -guild: code %d: %s", code, errOut.String())
	}
	var one cache.State
	if err := json.Unmarshal(out.Bytes(), &one); err != nil || len(one.Guilds) != 1 || one.Guilds["4194304"] == nil {
		t.Fatalf("dump -guild 4194304: %v\n%s", err, out.String())
	}
	out.Reset()
	if code := runCache([]string{"stats", "-json"}, env, &out, &errOut); code != exitOK {
		t.Fatalf("stats: code %d: %s", code, errOut.String())
	}
	var stats []cache.KindStats
	if err := json.Unmarshal(out.Bytes(), &stats); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, s := range stats {
		counts[s.Kind] = s.Count
		if s.Bytes <= 0 {
			t.Errorf("kind %s: %d bytes", s.Kind, s.Bytes)
		}
	}
	if counts["guilds"] != 2 || counts["channels"] != 2 || counts["members"] != 4 || len(counts) != 3 {
		t.Fatalf("stats counts %v, want 2 guilds, 2 channels, 4 members", counts)
	}
	if code := runCache([]string{"flush"}, env, &out, &errOut); code != exitBadArgs {
		t.Fatalf("an unknown cache subcommand: code %d", code)
	}
}
