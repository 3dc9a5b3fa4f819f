package cache

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
)

// KindStats is what one kind holds: its objects and their keys' Redis
// memory (MEMORY USAGE, which samples the elements of a large hash or list).
type KindStats struct {
	Kind    string `json:"kind"`
	Count   int64  `json:"count"`
	Bytes   int64  `json:"bytes"`
	Objects string `json:"objects"` // what Count counts
}

// Stats counts the objects and memory of each kept kind over shards' guilds
// (the guilds kind includes the shards' guild sets).
func Stats(ctx context.Context, c redis.UniversalClient, keys keyspace.Keys, shards []keyspace.ShardKey, kinds Kinds) ([]KindStats, error) {
	out := []KindStats{{Kind: "guilds", Objects: "guilds"}}
	for _, h := range hashKinds {
		if kinds.Has(h.kind) {
			out = append(out, KindStats{Kind: h.name, Objects: h.name})
		}
	}
	if kinds.Has(Messages) {
		out = append(out, KindStats{Kind: "messages", Objects: "messages"})
	}
	for _, s := range shards {
		ids, err := GuildIDs(ctx, c, keys, s)
		if err != nil {
			return nil, err
		}
		set, err := memory(ctx, c, keys.CacheShardGuilds(s))
		if err != nil {
			return nil, err
		}
		out[0].Bytes += set
		for _, id := range ids {
			if err := guildStats(ctx, c, keys, s, id, kinds, out); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// guildStats adds one guild's objects and memory to out (Stats' order).
func guildStats(ctx context.Context, c redis.UniversalClient, keys keyspace.Keys, s keyspace.ShardKey, guild string, kinds Kinds, out []KindStats) error {
	key := func(suffix string) string { return keys.CacheGuild(s, guild, suffix) }
	pipe := c.Pipeline()
	mem := []*redis.IntCmd{pipe.MemoryUsage(ctx, key(keyspace.CacheSuffixGuild))}
	lens := []*redis.IntCmd{nil}
	for _, h := range hashKinds {
		if kinds.Has(h.kind) {
			mem = append(mem, pipe.MemoryUsage(ctx, key(h.suffix)))
			lens = append(lens, pipe.HLen(ctx, key(h.suffix)))
		}
	}
	var channels *redis.StringSliceCmd
	if kinds.Has(Messages) {
		channels = pipe.HKeys(ctx, key(keyspace.CacheSuffixChannels))
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return fmt.Errorf("cache stats of guild %s: %w", guild, err)
	}
	out[0].Count++
	for i := range mem {
		out[i].Bytes += mem[i].Val() // a missing key: 0
		if lens[i] != nil {
			out[i].Count += lens[i].Val()
		}
	}
	if channels == nil {
		return nil
	}
	if len(channels.Val()) == 0 {
		return nil
	}
	pipe = c.Pipeline()
	var ns, ms []*redis.IntCmd
	for _, ch := range channels.Val() {
		k := key(keyspace.CacheSuffixMessages + ch)
		ns, ms = append(ns, pipe.LLen(ctx, k)), append(ms, pipe.MemoryUsage(ctx, k))
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return fmt.Errorf("cache stats of guild %s: %w", guild, err)
	}
	last := &out[len(out)-1]
	for i := range ns {
		last.Count += ns[i].Val()
		last.Bytes += ms[i].Val()
	}
	return nil
}

func memory(ctx context.Context, c redis.UniversalClient, key string) (int64, error) {
	n, err := c.MemoryUsage(ctx, key).Result()
	if err == redis.Nil {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cache stats: %w", err)
	}
	return n, nil
}
