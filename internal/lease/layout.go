package lease

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/disgoorg/snowflake/v2"

	"github.com/shardfleet/shardfleet/pkg/sharding"
)

// MaxSplitFactor bounds one split (Discord's ShardSplitCount is small).
const MaxSplitFactor = 64

// maxSplits bounds the splits a layout may record (validation is quadratic).
const maxSplits = 4096

// Layout is the fleet's shard layout: Count base shards, some of them split
// after a 4011 (shard s of count c becomes shards s + j*c of count c*Factor,
// j < Factor). Splits nest. Every worker reads it from Redis; Version grows by
// one with every change, so a worker notices a change by comparing versions.
type Layout struct {
	Version int64   `json:"version"`
	Count   int     `json:"count"`
	Splits  []Split `json:"splits,omitempty"`
}

// Split records that Key was split Factor ways.
type Split struct {
	Key    ShardKey `json:"key"`
	Factor int      `json:"factor"`
}

// Children are the shards a split produces (ShardKey.Split's rule).
func (s Split) Children() []ShardKey { return s.Key.Split(s.Factor) }

// Shards lists the layout's current shards (split shards replaced by their
// children), sorted by count then ID.
func (l Layout) Shards() []ShardKey {
	split := l.splitMap()
	var out []ShardKey
	var walk func(k ShardKey)
	walk = func(k ShardKey) {
		f, ok := split[k]
		if !ok {
			out = append(out, k)
			return
		}
		for _, c := range (Split{Key: k, Factor: f}).Children() {
			walk(c)
		}
	}
	for id := range l.Count {
		walk(ShardKey{ID: id, Count: l.Count})
	}
	return uniqueShards(out)
}

// Contains reports whether k is a current shard of the layout. It walks
// from the base shard congruent to k down through the splits, without
// enumerating the layout.
func (l Layout) Contains(k ShardKey) bool {
	if l.Count < 1 || k.Validate() != nil || k.Count%l.Count != 0 {
		return false
	}
	split := l.splitMap()
	cur := ShardKey{ID: k.ID % l.Count, Count: l.Count}
	for {
		f, isSplit := split[cur]
		if cur == k {
			return !isSplit
		}
		if !isSplit {
			return false
		}
		next := cur.Count * f
		if next > k.Count || k.Count%next != 0 {
			return false
		}
		cur = ShardKey{ID: k.ID % next, Count: next}
	}
}

func (l Layout) splitMap() map[ShardKey]int {
	split := make(map[ShardKey]int, len(l.Splits))
	for _, s := range l.Splits {
		split[s.Key] = s.Factor
	}
	return split
}

// ShardFor returns the current shard serving guildID: Discord's rule
// (guild_id >> 22) % count, applied at the base count and then through splits,
// which works because a child of (s, c) split k ways is exactly the shard of
// count c*k whose ID is congruent to s mod c.
func (l Layout) ShardFor(guildID uint64) ShardKey {
	if l.Count < 1 {
		return ShardKey{}
	}
	split := l.splitMap()
	g := snowflake.ID(guildID)
	k := ShardKey{ID: sharding.ShardIDByGuild(g, l.Count), Count: l.Count}
	for {
		f, ok := split[k]
		if !ok {
			return k
		}
		c := k.Count * f
		k = ShardKey{ID: sharding.ShardIDByGuild(g, c), Count: c}
	}
}

// validate checks a layout read from Redis or built by a caller.
func (l Layout) validate() error {
	if l.Count < 1 || l.Count > MaxShardCount {
		return fmt.Errorf("%w: layout count %d not in [1, %d]", ErrInvalidShard, l.Count, MaxShardCount)
	}
	if len(l.Splits) > maxSplits {
		return fmt.Errorf("%w: %d splits, at most %d", ErrInvalidShard, len(l.Splits), maxSplits)
	}
	cur := Layout{Count: l.Count}
	for _, s := range l.Splits {
		if _, err := cur.withSplit(s.Key, s.Factor); err != nil {
			return err
		}
		cur.Splits = append(cur.Splits, s)
	}
	return nil
}

// withSplit returns the layout with key split factor ways. Splitting a key
// that is already split the same way is a no-op (idempotent); splitting a key
// that is not a current shard is ErrNotInLayout.
func (l Layout) withSplit(key ShardKey, factor int) (Layout, error) {
	if err := key.Validate(); err != nil {
		return l, err
	}
	if factor < 2 || factor > MaxSplitFactor {
		return l, fmt.Errorf("%w: split factor %d not in [2, %d]", ErrInvalidShard, factor, MaxSplitFactor)
	}
	if key.Count*factor > MaxShardCount {
		return l, fmt.Errorf("%w: split count %d over %d", ErrInvalidShard, key.Count*factor, MaxShardCount)
	}
	for _, s := range l.Splits {
		if s.Key == key {
			if s.Factor == factor {
				return l, nil
			}
			return l, fmt.Errorf("%w: %v already split %d ways", ErrInvalidShard, key, s.Factor)
		}
	}
	if !l.Contains(key) {
		return l, fmt.Errorf("split %v: %w", key, ErrNotInLayout)
	}
	out := l
	out.Splits = append(slices.Clone(l.Splits), Split{Key: key, Factor: factor})
	return out, nil
}

func decodeLayout(version int64, data string) (Layout, error) {
	var l Layout
	if err := json.Unmarshal([]byte(data), &l); err != nil {
		return Layout{}, fmt.Errorf("decode layout: %w: %w", ErrCorrupt, err)
	}
	if err := l.validate(); err != nil {
		return Layout{}, fmt.Errorf("decode layout: %w: %w", ErrCorrupt, err)
	}
	l.Version = version
	return l, nil
}

func encodeLayout(l Layout) string {
	l.Version = 0           // the version lives in its own hash field
	b, _ := json.Marshal(l) // plain struct of ints: cannot fail
	return string(b)
}
