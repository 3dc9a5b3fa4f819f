package gatewaytest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/disgoorg/snowflake/v2"
)

// guildIDOf reads a GUILD_CREATE's d.id.
func guildIDOf(t *testing.T, env envelope) snowflake.ID {
	t.Helper()
	var d struct {
		ID snowflake.ID `json:"id"`
	}
	if err := json.Unmarshal(env.D, &d); err != nil {
		t.Fatal(err)
	}
	return d.ID
}

// TestAddGuildsShardingRequired: a shard grown past MaxGuildsPerShard keeps
// its session, gets GUILD_CREATE for the new guilds, and its next IDENTIFY
// closes 4011; the other shards and the split halves still IDENTIFY.
func TestAddGuildsShardingRequired(t *testing.T) {
	// 12 guilds over 3 shards: 4 each, cap 5.
	s := startFake(t, WithGuilds(12), WithMaxGuildsPerShard(5), WithIdentifyWindow(0))
	grown := connect(t, s)
	if r := grown.identify(s, 1, 3); len(r.Guilds) != 4 {
		t.Fatalf("shard 1/3 READY with %d guilds, want 4", len(r.Guilds))
	}
	other := connect(t, s)
	other.identify(s, 0, 3)

	on, err := s.AddGuilds(1, 3, 3)
	if err != nil || on != 7 {
		t.Fatalf("AddGuilds(1, 3, 3) = %d, %v; want 7 guilds on the shard", on, err)
	}
	all := s.GuildIDs()
	if len(all) != 15 {
		t.Fatalf("%d guilds after adding 3 to 12", len(all))
	}
	seen := map[snowflake.ID]bool{}
	for _, g := range all {
		if seen[g] {
			t.Fatalf("guild %s twice", g)
		}
		seen[g] = true
	}
	for _, g := range all[12:] {
		if shardOf(g, 3) != 1 {
			t.Fatalf("added guild %s routes to shard %d of 3, want 1", g, shardOf(g, 3))
		}
	}
	// The live session hears of each join, in order.
	for _, want := range all[12:] {
		if got := guildIDOf(t, grown.nextOp(0, "GUILD_CREATE")); got != want {
			t.Fatalf("GUILD_CREATE for %s, want %s", got, want)
		}
	}
	var g0 snowflake.ID // a guild of shard 0/3
	for _, g := range all {
		if shardOf(g, 3) == 0 {
			g0 = g
			break
		}
	}
	if s.Dispatch("MESSAGE_CREATE", g0, MessageCreateData(g0, 1)) != 1 {
		t.Fatal("shard 0/3 should still get its guilds' events")
	}
	if env := other.next(); env.typ() != "MESSAGE_CREATE" {
		t.Fatalf("shard 0/3 got %q first, want MESSAGE_CREATE (no GUILD_CREATE of another shard's guild)", env.typ())
	}

	// The shard keeps its session until it IDENTIFYs again.
	if n := s.InvalidateSession(1, false); n != 1 {
		t.Fatalf("op 9 false hit %d connections", n)
	}
	grown.nextOp(9, "")
	grown.send(identifyPayload(s.Token(), 1, 3, nil))
	grown.expectClose(4011)
	if st := s.Stats(); st.FatalCloses != 1 {
		t.Fatalf("fatal closes %d, want 1", st.FatalCloses)
	}
	again := connect(t, s)
	again.send(identifyPayload(s.Token(), 1, 3, nil))
	again.expectClose(4011)

	// A shard that did not grow still IDENTIFYs.
	if r := connect(t, s).identify(s, 2, 3); len(r.Guilds) != 4 {
		t.Fatalf("shard 2/3 READY with %d guilds, want 4", len(r.Guilds))
	}
	// Split to 6: shard 1/3's guilds are exactly 1/6's and 4/6's, each under the cap.
	total := 0
	for _, id := range []int{1, 4} {
		r := connect(t, s).identify(s, id, 6)
		if len(r.Guilds) > 5 {
			t.Fatalf("half %d/6 READY with %d guilds, over the cap", id, len(r.Guilds))
		}
		for _, g := range r.Guilds {
			if gid, _ := snowflake.Parse(g.ID); shardOf(gid, 6) != id {
				t.Fatalf("half %d/6 got guild %s of shard %d", id, g.ID, shardOf(gid, 6))
			}
		}
		total += len(r.Guilds)
	}
	if total != 7 {
		t.Fatalf("the halves hold %d guilds, want the 7 of 1/3", total)
	}
}

// TestAddGuildsCountsAgree: guildsOnShard (the 4011 rule) and guildsOf
// (READY) agree after guilds were added, for every count, and the added
// guilds spread evenly over the halves of their shard.
func TestAddGuildsCountsAgree(t *testing.T) {
	s := startFake(t, WithGuilds(10))
	for _, a := range [][3]int{{1, 3, 5}, {0, 1, 2}, {5, 6, 7}, {3, 4, 1}} {
		if _, err := s.AddGuilds(a[0], a[1], a[2]); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for count := 1; count <= 12; count++ {
		total := 0
		for shard := range count {
			got, want := s.guildsOnShard(shard, count), len(s.guildsOf(shard, count))
			if got != want {
				t.Fatalf("shard %d/%d: guildsOnShard %d, listed %d", shard, count, got, want)
			}
			total += got
		}
		if total != 10+5+2+7+1 {
			t.Fatalf("count %d routes %d guilds", count, total)
		}
	}
	// The 7 added to 5/6 go 4 and 3 to 5/12 and 11/12 (with the initial ones: even).
	added := s.added[7:14]
	halves := map[int]int{}
	for _, g := range added {
		halves[shardOf(g, 12)]++
	}
	if halves[5]+halves[11] != 7 || halves[5] < 3 || halves[11] < 3 {
		t.Fatalf("7 guilds added to 5/6 split %v over 5/12 and 11/12", halves)
	}
}

func TestAddGuildsInvalid(t *testing.T) {
	s := startFake(t, WithGuilds(2))
	for _, a := range [][3]int{{0, 0, 1}, {-1, 2, 1}, {2, 2, 1}, {0, 2, -1}, {0, 1, maxGuilds}} {
		if _, err := s.AddGuilds(a[0], a[1], a[2]); err == nil {
			t.Errorf("AddGuilds%v: no error", a)
		}
	}
	if n := len(s.GuildIDs()); n != 2 {
		t.Fatalf("%d guilds after invalid adds, want 2", n)
	}
}

func TestAddGuildsControl(t *testing.T) {
	s := startFake(t, WithGuilds(6))
	post := func(query string) (int, map[string]any) {
		t.Helper()
		resp, err := noKeepAlive.Post(s.URL()+"/_fake/add-guilds"+query, "application/json", strings.NewReader(""))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if code, out := post("?shard=1&count=2&n=4"); code != 200 || out["added"] != 4.0 || out["guilds_on_shard"] != 7.0 {
		t.Fatalf("add-guilds: %d %v, want 200 with added 4, guilds_on_shard 7", code, out)
	}
	var ids []snowflake.ID
	if code := getJSON(t, s.URL()+"/_fake/guilds", "", &ids); code != 200 || len(ids) != 10 {
		t.Fatalf("/_fake/guilds: %d, %d guilds; want 10", code, len(ids))
	}
	for _, q := range []string{"?count=2&n=1", "?shard=0&n=1", "?shard=0&count=2", "?shard=2&count=2&n=1",
		"?shard=0&count=2&n=-1", "?shard=x&count=2&n=1"} {
		if code, out := post(q); code != 400 || out["error"] == nil {
			t.Errorf("add-guilds%s: %d %v, want 400 with an error", q, code, out)
		}
	}
}
