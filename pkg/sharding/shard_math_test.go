package sharding

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/disgoorg/snowflake/v2"

	"github.com/shardfleet/shardfleet/internal/keyspace"
)

// discordEpochMs is 2015-01-01T00:00:00Z in Unix ms.
const discordEpochMs = 1420070400000

func TestShardIDByGuildTable(t *testing.T) {
	tests := []struct {
		guild snowflake.ID
		count int
		want  int
	}{
		{guild: 0, count: 1, want: 0},
		{guild: 1 << 22, count: 2, want: 1},
		{guild: 2 << 22, count: 2, want: 0},
		{guild: 7<<22 | (1<<22 - 1), count: 3, want: 1}, // low 22 bits ignored
		// Guild 41771983423143937: 41771983423143937 >> 22 = 9959216934.
		{guild: 41771983423143937, count: 3, want: 0},
		{guild: 41771983423143937, count: 16, want: 6},
		{guild: 41771983423143937, count: 1000, want: 934},
		// The top bit set: uint64 math, no negative result. 1<<63 >> 22 = 1<<41 = 2199023255552.
		{guild: snowflake.ID(1 << 63), count: 7, want: 2199023255552 % 7},
		{guild: snowflake.ID(^uint64(0)), count: 10, want: 4398046511103 % 10},
		// No shards: 0, never a panic.
		{guild: 12345 << 22, count: 0, want: 0},
		{guild: 12345 << 22, count: -3, want: 0},
	}
	for _, tc := range tests {
		if got := ShardIDByGuild(tc.guild, tc.count); got != tc.want {
			t.Errorf("ShardIDByGuild(%d, %d) = %d, want %d", tc.guild, tc.count, got, tc.want)
		}
	}
}

// The shard is the guild's creation time (ms since the Discord epoch) modulo
// the count, for random snowflakes and counts.
func TestShardIDByGuildProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		ms := r.Int64N(time.Now().UnixMilli() - discordEpochMs)
		g := snowflake.New(time.UnixMilli(discordEpochMs + ms))
		g |= snowflake.ID(r.Uint64N(1 << 22))
		count := 1 + r.IntN(5000)
		got := ShardIDByGuild(g, count)
		if want := int(ms % int64(count)); got != want {
			t.Fatalf("guild %d (ms %d) on %d shards: got %d, want %d", g, ms, count, got, want)
		}
		if got < 0 || got >= count {
			t.Fatalf("out of range: %d of %d", got, count)
		}
	}
}

// Splitting a shard keeps exactly its guilds: every guild of s/c lands on
// exactly one child, and no other guild does. Also after a second split.
func TestShardKeySplitPartition(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		c := 1 + r.IntN(64)
		k := 2 + r.IntN(3)
		parent := ShardKey{ID: r.IntN(c), Count: c}
		children := parent.Split(k)
		if len(children) != k {
			t.Fatalf("%v.Split(%d) = %v", parent, k, children)
		}
		// A mixed layout: one child split again. Every guild of parent is owned
		// by exactly one shard of it.
		split := r.IntN(k)
		layout := append(append(append([]ShardKey{}, children[:split]...), children[split+1:]...), children[split].Split(k)...)
		for range 50 {
			g := snowflake.ID(r.Uint64())
			n := 0
			for _, ch := range children {
				if ch.Owns(g) {
					n++
				}
			}
			inLayout := 0
			for _, sh := range layout {
				if sh.Owns(g) {
					inLayout++
				}
			}
			want := 0
			if parent.Owns(g) {
				want = 1
			}
			if n != want || inLayout != want {
				t.Fatalf("guild %d (of parent %v: %v) owned by %d children %v, %d of layout %v",
					g, parent, want == 1, n, children, inLayout, layout)
			}
		}
	}
	if got := (ShardKey{ID: 1, Count: 2}).Split(1); got != nil {
		t.Errorf("split count 1 = %v, want nil", got)
	}
	if got := (ShardKey{ID: 2, Count: 2}).Split(2); got != nil {
		t.Errorf("invalid key split = %v, want nil", got)
	}
	want := []ShardKey{{ID: 1, Count: 6}, {ID: 4, Count: 6}}
	if got := (ShardKey{ID: 1, Count: 3}).Split(2); got[0] != want[0] || got[1] != want[1] {
		t.Errorf("{1,3}.Split(2) = %v, want %v", got, want)
	}
}

func TestShardMaxConcurrencyKey(t *testing.T) {
	tests := []struct{ id, mc, want int }{
		{0, 1, 0}, {5, 1, 0}, {5, 4, 1}, {16, 16, 0}, {17, 16, 1}, {3, 0, 0}, {3, -2, 0},
	}
	for _, tc := range tests {
		if got := ShardMaxConcurrencyKey(tc.id, tc.mc); got != tc.want {
			t.Errorf("ShardMaxConcurrencyKey(%d, %d) = %d, want %d", tc.id, tc.mc, got, tc.want)
		}
	}
}

// ShardKey is the fleet's one shard key: the same type, and the same JSON, as
// the leases' and Redis keys' (keyspace.ShardKey).
func TestShardKeyIsTheFleetsKey(t *testing.T) {
	var _ keyspace.ShardKey = ShardKey{}
	b, err := json.Marshal(ShardKey{ID: 3, Count: 16})
	if err != nil || string(b) != `{"id":3,"count":16}` {
		t.Fatalf("json = %s, %v; want the wire form {\"id\":3,\"count\":16}", b, err)
	}
}
