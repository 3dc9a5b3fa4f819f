package lease

import (
	"errors"
	"slices"
	"testing"
)

func TestLayoutSplits(t *testing.T) {
	l := Layout{Count: 4}
	if got := l.Shards(); !slices.Equal(got, shardsOf(4)) {
		t.Fatalf("base shards %v", got)
	}
	l2, err := l.withSplit(ShardKey{ID: 1, Count: 4}, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []ShardKey{{ID: 0, Count: 4}, {ID: 2, Count: 4}, {ID: 3, Count: 4}, {ID: 1, Count: 8}, {ID: 5, Count: 8}}
	if got := l2.Shards(); !slices.Equal(got, want) {
		t.Fatalf("after split: %v, want %v", got, want)
	}
	if again, err := l2.withSplit(ShardKey{ID: 1, Count: 4}, 2); err != nil || len(again.Splits) != 1 {
		t.Fatalf("repeat split not idempotent: %v, %v", again.Splits, err)
	}
	if _, err := l2.withSplit(ShardKey{ID: 1, Count: 4}, 3); !errors.Is(err, ErrInvalidShard) {
		t.Fatalf("split the same key another way: %v", err)
	}
	if _, err := l2.withSplit(ShardKey{ID: 1, Count: 5}, 2); !errors.Is(err, ErrNotInLayout) {
		t.Fatalf("split a key outside the layout: %v", err)
	}
	l3, err := l2.withSplit(ShardKey{ID: 5, Count: 8}, 2) // nested split
	if err != nil {
		t.Fatal(err)
	}
	want = []ShardKey{{ID: 0, Count: 4}, {ID: 2, Count: 4}, {ID: 3, Count: 4}, {ID: 1, Count: 8}, {ID: 5, Count: 16}, {ID: 13, Count: 16}}
	if got := l3.Shards(); !slices.Equal(got, want) {
		t.Fatalf("nested split: %v, want %v", got, want)
	}
	for _, f := range []int{0, 1, -2, MaxSplitFactor + 1} {
		if _, err := l.withSplit(ShardKey{ID: 0, Count: 4}, f); !errors.Is(err, ErrInvalidShard) {
			t.Errorf("factor %d: %v", f, err)
		}
	}
}

// ShardFor must agree with Discord's (guild_id >> 22) % count on the shard
// that serves the guild, for every split shape.
func TestLayoutShardFor(t *testing.T) {
	l, _ := Layout{Count: 4}.withSplit(ShardKey{ID: 1, Count: 4}, 2)
	l, _ = l.withSplit(ShardKey{ID: 5, Count: 8}, 2)
	current := l.Shards()
	for g := uint64(0); g < 5000; g++ {
		guild := g<<22 | g%7
		k := l.ShardFor(guild)
		if !slices.Contains(current, k) {
			t.Fatalf("guild %d -> %v, not a current shard", guild, k)
		}
		if int((guild>>22)%uint64(k.Count)) != k.ID {
			t.Fatalf("guild %d -> %v: Discord would route it to %d", guild, k, (guild>>22)%uint64(k.Count))
		}
	}
	if (Layout{}).ShardFor(1) != (ShardKey{}) {
		t.Fatal("empty layout must not route")
	}
}

func TestDecodeLayoutRejectsCorrupt(t *testing.T) {
	for _, data := range []string{"", "{", `{"count":0}`, `{"count":-3}`, `{"count":2,"splits":[{"key":{"id":5,"count":2},"factor":2}]}`,
		`{"count":2,"splits":[{"key":{"id":0,"count":2},"factor":1000}]}`} {
		if _, err := decodeLayout(1, data); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decode %q: %v, want ErrCorrupt", data, err)
		}
	}
	l, err := decodeLayout(7, `{"count":3}`)
	if err != nil || l.Version != 7 || l.Count != 3 {
		t.Fatalf("decode valid: %+v, %v", l, err)
	}
}

// FuzzDecodeLayout: the layout comes from Redis (untrusted); decoding must
// never panic, and what it accepts must be usable.
func FuzzDecodeLayout(f *testing.F) {
	f.Add(`{"count":4,"splits":[{"key":{"id":1,"count":4},"factor":2}]}`, uint64(1<<22))
	f.Add(`{"count":1}`, uint64(0))
	f.Add(`{"count":1048576,"splits":[{"key":{"id":0,"count":1048576},"factor":2}]}`, uint64(7))
	f.Fuzz(func(t *testing.T, data string, guild uint64) {
		l, err := decodeLayout(1, data)
		if err != nil {
			return
		}
		if len(l.Splits) > 8 || l.Count > 4096 {
			return // valid but too large to enumerate quickly
		}
		shards := l.Shards()
		if len(shards) == 0 {
			t.Fatalf("accepted layout %q has no shards", data)
		}
		if k := l.ShardFor(guild); !slices.Contains(shards, k) {
			t.Fatalf("ShardFor(%d) = %v not in %v", guild, k, shards)
		}
	})
}

func TestLayoutContainsAgreesWithShards(t *testing.T) {
	l, _ := Layout{Count: 3}.withSplit(ShardKey{ID: 2, Count: 3}, 3)
	l, _ = l.withSplit(ShardKey{ID: 5, Count: 9}, 2)
	current := l.Shards()
	for count := 1; count <= 40; count++ {
		for id := range count {
			k := ShardKey{ID: id, Count: count}
			if got, want := l.Contains(k), slices.Contains(current, k); got != want {
				t.Fatalf("Contains(%v) = %v, Shards says %v", k, got, want)
			}
		}
	}
}
