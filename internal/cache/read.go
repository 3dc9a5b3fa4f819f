package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
)

// State is the cache as `worker cache dump` prints it (the contract's shape,
// shared with the fake's /_fake/state): kinds the cache does not keep, and
// empty maps, are omitted.
type State struct {
	Guilds map[string]*Guild `json:"guilds"`
}

// Guild is one cached guild and its kinds.
type Guild struct {
	Guild       json.RawMessage            `json:"guild,omitempty"`
	Unavailable bool                       `json:"unavailable"`
	Channels    map[string]json.RawMessage `json:"channels,omitempty"`
	Roles       map[string]json.RawMessage `json:"roles,omitempty"`
	Emojis      map[string]json.RawMessage `json:"emojis,omitempty"`
	Stickers    map[string]json.RawMessage `json:"stickers,omitempty"`
	Members     map[string]json.RawMessage `json:"members,omitempty"`
	VoiceStates map[string]json.RawMessage `json:"voice_states,omitempty"`
	Presences   map[string]json.RawMessage `json:"presences,omitempty"`
	// Messages per channel ID, oldest first.
	Messages map[string][]json.RawMessage `json:"messages,omitempty"`
}

// hashKinds are the kinds kept in one HASH per guild: their suffix, and
// where a Guild holds them.
var hashKinds = []struct {
	kind   Kinds
	name   string
	suffix string
	field  func(*Guild) *map[string]json.RawMessage
}{
	{Channels, "channels", keyspace.CacheSuffixChannels, func(g *Guild) *map[string]json.RawMessage { return &g.Channels }},
	{Roles, "roles", keyspace.CacheSuffixRoles, func(g *Guild) *map[string]json.RawMessage { return &g.Roles }},
	{Emojis, "emojis", keyspace.CacheSuffixEmojis, func(g *Guild) *map[string]json.RawMessage { return &g.Emojis }},
	{Emojis, "stickers", keyspace.CacheSuffixStickers, func(g *Guild) *map[string]json.RawMessage { return &g.Stickers }},
	{Members, "members", keyspace.CacheSuffixMembers, func(g *Guild) *map[string]json.RawMessage { return &g.Members }},
	{VoiceStates, "voice_states", keyspace.CacheSuffixVoice, func(g *Guild) *map[string]json.RawMessage { return &g.VoiceStates }},
	{Presences, "presences", keyspace.CacheSuffixPresences, func(g *Guild) *map[string]json.RawMessage { return &g.Presences }},
}

// ReadKinds reads the kinds the fleet's workers keep (CacheKinds, written at
// start); none when no worker wrote them.
func ReadKinds(ctx context.Context, c redis.UniversalClient, keys keyspace.Keys) (Kinds, error) {
	v, err := c.Get(ctx, keys.CacheKinds()).Result()
	if err == redis.Nil {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read cache kinds: %w", err)
	}
	k, err := ParseKinds(v)
	if err != nil {
		return 0, fmt.Errorf("%w: cache kinds %q: %v", keyspace.ErrCorrupt, v, err)
	}
	return k, nil
}

// GuildIDs lists the guilds cached for shard, sorted, by SSCAN (a shard may
// hold thousands).
func GuildIDs(ctx context.Context, c redis.UniversalClient, keys keyspace.Keys, shard keyspace.ShardKey) ([]string, error) {
	var ids []string
	iter := c.SScan(ctx, keys.CacheShardGuilds(shard), 0, "", 1000).Iterator()
	for iter.Next(ctx) {
		ids = append(ids, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("list cached guilds of shard %s: %w", shard, err)
	}
	slices.Sort(ids)
	return ids, nil
}

// ReadGuild reads guild's kinds of kinds from shard's keys; nil when the
// guild is not cached.
func ReadGuild(ctx context.Context, c redis.UniversalClient, keys keyspace.Keys, shard keyspace.ShardKey, guild string, kinds Kinds) (*Guild, error) {
	key := func(suffix string) string { return keys.CacheGuild(shard, guild, suffix) }
	pipe := c.Pipeline()
	head := pipe.HMGet(ctx, key(keyspace.CacheSuffixGuild), FieldGuild, FieldUnavailable)
	hashes := make([]*redis.MapStringStringCmd, len(hashKinds))
	for i, h := range hashKinds {
		if kinds.Has(h.kind) {
			hashes[i] = pipe.HGetAll(ctx, key(h.suffix))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read cached guild %s: %w", guild, err)
	}
	vals := head.Val()
	if vals[0] == nil && vals[1] == nil {
		return nil, nil
	}
	g := &Guild{Unavailable: vals[1] == "1"}
	if s, ok := vals[0].(string); ok {
		g.Guild = json.RawMessage(s)
	}
	for i, h := range hashKinds {
		if hashes[i] != nil && len(hashes[i].Val()) > 0 {
			m := make(map[string]json.RawMessage, len(hashes[i].Val()))
			for id, v := range hashes[i].Val() {
				m[id] = json.RawMessage(v)
			}
			*h.field(g) = m
		}
	}
	if kinds.Has(Messages) {
		msgs, err := readMessages(ctx, c, keys, shard, guild, g.Channels)
		if err != nil {
			return nil, err
		}
		g.Messages = msgs
	}
	return g, nil
}

// readMessages reads the message lists of the guild's channels, oldest first.
func readMessages(ctx context.Context, c redis.UniversalClient, keys keyspace.Keys, shard keyspace.ShardKey, guild string,
	channels map[string]json.RawMessage) (map[string][]json.RawMessage, error) {
	pipe := c.Pipeline()
	lists := map[string]*redis.StringSliceCmd{}
	for ch := range channels {
		lists[ch] = pipe.LRange(ctx, keys.CacheGuild(shard, guild, keyspace.CacheSuffixMessages+ch), 0, -1)
	}
	if len(lists) == 0 {
		return nil, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read cached messages of guild %s: %w", guild, err)
	}
	out := map[string][]json.RawMessage{}
	for ch, cmd := range lists {
		newestFirst := cmd.Val()
		for i := len(newestFirst) - 1; i >= 0; i-- {
			out[ch] = append(out[ch], json.RawMessage(newestFirst[i]))
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// Dump reads every guild cached for shards.
func Dump(ctx context.Context, c redis.UniversalClient, keys keyspace.Keys, shards []keyspace.ShardKey, kinds Kinds) (State, error) {
	st := State{Guilds: map[string]*Guild{}}
	for _, s := range shards {
		ids, err := GuildIDs(ctx, c, keys, s)
		if err != nil {
			return State{}, err
		}
		for _, id := range ids {
			g, err := ReadGuild(ctx, c, keys, s, id, kinds)
			if err != nil {
				return State{}, err
			}
			if g != nil {
				st.Guilds[id] = g
			}
		}
	}
	return st, nil
}
