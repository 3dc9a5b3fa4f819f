package fleet

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/shardfleet/shardfleet/internal/cache"

	"github.com/disgoorg/snowflake/v2"
	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/internal/lease"
)

var (
	// ErrNotCached: the object is not in the state cache (the guild is not
	// served, was never created, or the object does not exist).
	ErrNotCached = errors.New("fleet: not in the state cache")
	// ErrKindNotCached: the fleet does not cache this kind of object; the
	// error names the workers' CACHE setting to change.
	ErrKindNotCached = errors.New("fleet: the fleet does not cache this kind")
)

// settingCache names the workers' setting of the cached kinds in errors.
const settingCache = "CACHE (-cache)"

// cacheRef is one guild's place in the cache: the keys of its shard.
type cacheRef struct {
	keys  keyspace.Keys
	shard ShardKey
	guild string
}

// key is the guild's key of a keyspace.CacheSuffix* kind.
func (r cacheRef) key(suffix string) string { return r.keys.CacheGuild(r.shard, r.guild, suffix) }

// cacheRead routes guild to the shard that serves it through the fleet's
// layout (as Send does, so mixed counts after a split route right), then
// runs queue's commands in one pipeline with the read of the fleet's cached
// kinds, and fails with ErrKindNotCached unless every kind of need is cached.
// The replies of queue's commands are the caller's to read: a missing one
// is redis.Nil. A pipeline, not MULTI: the kinds are under the fleet's tag and
// a guild's keys under its shard's, which need not share a Cluster slot, so
// two objects read together may be from two consecutive commits.
func (c *Client) cacheRead(ctx context.Context, guild snowflake.ID, need cache.Kinds, queue func(redis.Pipeliner, cacheRef)) error {
	layout, err := lease.LoadLayout(ctx, c.redis, c.keys)
	if errors.Is(err, lease.ErrNoLayout) {
		return fmt.Errorf("%w: the fleet has no layout yet, so no shard serves guild %d", ErrNotCached, guild)
	}
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	ref := cacheRef{keys: c.keys, shard: layout.ShardFor(uint64(guild)), guild: guild.String()}
	pipe := c.redis.Pipeline()
	kinds := pipe.Get(ctx, c.keys.CacheKinds())
	queue(pipe, ref)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("fleet: read the state cache: %w", err)
	}
	return checkKinds(kinds, need)
}

// checkKinds fails with ErrKindNotCached unless the fleet's list of cached
// kinds (internal/cache's names, as the workers' CACHE setting spells them)
// holds every kind of need.
func checkKinds(kinds *redis.StringCmd, need cache.Kinds) error {
	list, err := kinds.Result()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("%w: no worker has recorded the kinds it caches: start the workers with %s set (e.g. guilds,channels,roles,members)",
			ErrKindNotCached, settingCache)
	}
	if err != nil {
		return fmt.Errorf("fleet: read the cached kinds: %w", err)
	}
	have, err := cache.ParseKinds(list)
	if err != nil {
		return fmt.Errorf("fleet: the cached kinds %q: %w: %v", list, keyspace.ErrCorrupt, err)
	}
	if missing := need &^ have; missing != 0 {
		return fmt.Errorf("%w: %s: the workers' %s is %q; add %s to it", ErrKindNotCached, missing, settingCache, list, missing)
	}
	return nil
}

// decodeCached decodes one stored object and keeps it whole in Raw. The
// cache is written by whoever has access to Redis: anything that is not a
// JSON object of the type is keyspace.ErrCorrupt.
func decodeCached[T any, P cachedObject[T]](b []byte) (T, error) {
	var v T
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return v, fmt.Errorf("%w: not a JSON object", keyspace.ErrCorrupt)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("%w: %w", keyspace.ErrCorrupt, err)
	}
	P(&v).setRaw(json.RawMessage(b))
	return v, nil
}

// decodeOne reads the reply of one HGET: ErrNotCached when it is absent.
// what names the object in errors.
func decodeOne[T any, P cachedObject[T]](cmd *redis.StringCmd, what string) (T, error) {
	b, err := cmd.Bytes()
	if errors.Is(err, redis.Nil) {
		var zero T
		return zero, fmt.Errorf("%w: %s", ErrNotCached, what)
	}
	if err == nil {
		var v T
		if v, err = decodeCached[T, P](b); err == nil {
			return v, nil
		}
	}
	var zero T
	return zero, fmt.Errorf("fleet: %s: %w", what, err)
}

// decodeAll decodes stored objects in their order.
func decodeAll[T any, P cachedObject[T]](vals []string, what string) ([]T, error) {
	out := make([]T, 0, len(vals))
	for _, s := range vals {
		v, err := decodeCached[T, P]([]byte(s))
		if err != nil {
			return nil, fmt.Errorf("fleet: %s: %w", what, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// decodeHash decodes the objects of a hash kind, sorted by ID (a hash has
// no order).
func decodeHash[T any, P cachedObject[T]](m map[string]string, what string) ([]T, error) {
	out, err := decodeAll[T, P](slices.Collect(maps.Values(m)), what)
	slices.SortFunc(out, func(a, b T) int { return cmp.Compare(P(&a).cacheID(), P(&b).cacheID()) })
	return out, err
}

// readObject reads one object of a hash kind: field id of the guild's key
// with suffix.
func readObject[T any, P cachedObject[T]](ctx context.Context, c *Client, guild snowflake.ID, kind cache.Kinds, suffix string, id snowflake.ID, what string) (T, error) {
	var cmd *redis.StringCmd
	err := c.cacheRead(ctx, guild, kind, func(p redis.Pipeliner, r cacheRef) {
		cmd = p.HGet(ctx, r.key(suffix), id.String())
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return decodeOne[T, P](cmd, fmt.Sprintf("%s %d of guild %d", what, id, guild))
}

// readAll reads every object of a hash kind of the guild, sorted by ID. An
// empty list is ErrNotCached when the guild is not cached at all (not in its
// shard's set of cached guilds).
func readAll[T any, P cachedObject[T]](ctx context.Context, c *Client, guild snowflake.ID, kind cache.Kinds, suffix, what string) ([]T, error) {
	var all *redis.MapStringStringCmd
	var known *redis.BoolCmd
	err := c.cacheRead(ctx, guild, kind, func(p redis.Pipeliner, r cacheRef) {
		all = p.HGetAll(ctx, r.key(suffix))
		known = p.SIsMember(ctx, r.keys.CacheShardGuilds(r.shard), r.guild)
	})
	if err != nil {
		return nil, err
	}
	what = fmt.Sprintf("%s of guild %d", what, guild)
	m, err := all.Result()
	if err != nil {
		return nil, fmt.Errorf("fleet: %s: %w", what, err)
	}
	if len(m) == 0 {
		return nil, guildKnown(known, what)
	}
	return decodeHash[T, P](m, what)
}

// guildKnown is nil when the guild is in its shard's set of cached guilds
// (an empty kind is then really empty), ErrNotCached when it is not.
func guildKnown(known *redis.BoolCmd, what string) error {
	in, err := known.Result()
	if err != nil {
		return fmt.Errorf("fleet: %s: %w", what, err)
	}
	if !in {
		return fmt.Errorf("%w: %s (the guild is not cached)", ErrNotCached, what)
	}
	return nil
}

// Guild reads a guild's top-level fields and whether it is unavailable.
func (c *Client) Guild(ctx context.Context, guildID snowflake.ID) (Guild, error) {
	var guild, unavailable *redis.StringCmd
	err := c.cacheRead(ctx, guildID, cache.Guilds, func(p redis.Pipeliner, r cacheRef) {
		key := r.key(keyspace.CacheSuffixGuild)
		guild = p.HGet(ctx, key, "guild")
		unavailable = p.HGet(ctx, key, "unavailable")
	})
	if err != nil {
		return Guild{}, err
	}
	g, err := decodeOne[Guild](guild, fmt.Sprintf("guild %d", guildID))
	if err != nil {
		return Guild{}, err
	}
	g.Unavailable = unavailable.Val() == "1"
	return g, nil
}

// Channel reads one of a guild's channels or threads.
func (c *Client) Channel(ctx context.Context, guildID, channelID snowflake.ID) (Channel, error) {
	return readObject[Channel](ctx, c, guildID, cache.Channels, keyspace.CacheSuffixChannels, channelID, "channel")
}

// GuildChannels reads a guild's channels and threads, sorted by ID.
func (c *Client) GuildChannels(ctx context.Context, guildID snowflake.ID) ([]Channel, error) {
	return readAll[Channel](ctx, c, guildID, cache.Channels, keyspace.CacheSuffixChannels, "channels")
}

// Roles reads a guild's roles (@everyone's ID is the guild's), sorted by ID.
func (c *Client) Roles(ctx context.Context, guildID snowflake.ID) ([]Role, error) {
	return readAll[Role](ctx, c, guildID, cache.Roles, keyspace.CacheSuffixRoles, "roles")
}

// Role reads one of a guild's roles.
func (c *Client) Role(ctx context.Context, guildID, roleID snowflake.ID) (Role, error) {
	return readObject[Role](ctx, c, guildID, cache.Roles, keyspace.CacheSuffixRoles, roleID, "role")
}

// Member reads a member of a guild.
func (c *Client) Member(ctx context.Context, guildID, userID snowflake.ID) (GuildMember, error) {
	return readObject[GuildMember](ctx, c, guildID, cache.Members, keyspace.CacheSuffixMembers, userID, "member")
}

// VoiceState reads a member's voice state: ErrNotCached when the member is
// in no voice channel of the guild.
func (c *Client) VoiceState(ctx context.Context, guildID, userID snowflake.ID) (VoiceState, error) {
	return readObject[VoiceState](ctx, c, guildID, cache.VoiceStates, keyspace.CacheSuffixVoice, userID, "voice state of user")
}

// Presence reads a member's presence.
func (c *Client) Presence(ctx context.Context, guildID, userID snowflake.ID) (Presence, error) {
	return readObject[Presence](ctx, c, guildID, cache.Presences, keyspace.CacheSuffixPresences, userID, "presence of user")
}

// Emojis reads a guild's custom emojis, sorted by ID.
func (c *Client) Emojis(ctx context.Context, guildID snowflake.ID) ([]Emoji, error) {
	return readAll[Emoji](ctx, c, guildID, cache.Emojis, keyspace.CacheSuffixEmojis, "emojis")
}

// Stickers reads a guild's stickers (cached with the emojis), sorted by ID.
func (c *Client) Stickers(ctx context.Context, guildID snowflake.ID) ([]Sticker, error) {
	return readAll[Sticker](ctx, c, guildID, cache.Emojis, keyspace.CacheSuffixStickers, "stickers")
}

// Messages reads the last messages of a channel or thread, oldest first (as
// many as the workers' CACHE_MESSAGES keeps).
func (c *Client) Messages(ctx context.Context, guildID, channelID snowflake.ID) ([]Message, error) {
	var list *redis.StringSliceCmd
	var known *redis.BoolCmd
	err := c.cacheRead(ctx, guildID, cache.Messages, func(p redis.Pipeliner, r cacheRef) {
		list = p.LRange(ctx, r.key(keyspace.CacheSuffixMessages+channelID.String()), 0, -1)
		known = p.SIsMember(ctx, r.keys.CacheShardGuilds(r.shard), r.guild)
	})
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("messages of channel %d of guild %d", channelID, guildID)
	vals, err := list.Result()
	if err != nil {
		return nil, fmt.Errorf("fleet: %s: %w", what, err)
	}
	if len(vals) == 0 {
		return nil, guildKnown(known, what)
	}
	slices.Reverse(vals) // the list is newest first
	return decodeAll[Message](vals, what)
}

// Permissions computes the permissions of a member in a channel (a thread:
// with its parent's overwrites), or in the guild when channelID is 0, from
// the cached guild, roles, member and channel, as ComputePermissions does;
// timeouts are judged by this machine's clock. It needs the guilds, roles,
// members and channels kinds.
func (c *Client) Permissions(ctx context.Context, guildID, channelID, userID snowflake.ID) (Permissions, error) {
	need := cache.Guilds | cache.Roles | cache.Members
	if channelID != 0 {
		need |= cache.Channels
	}
	var guild, member, channel *redis.StringCmd
	var roles *redis.MapStringStringCmd
	err := c.cacheRead(ctx, guildID, need, func(p redis.Pipeliner, r cacheRef) {
		guild = p.HGet(ctx, r.key(keyspace.CacheSuffixGuild), "guild")
		roles = p.HGetAll(ctx, r.key(keyspace.CacheSuffixRoles))
		member = p.HGet(ctx, r.key(keyspace.CacheSuffixMembers), userID.String())
		if channelID != 0 {
			channel = p.HGet(ctx, r.key(keyspace.CacheSuffixChannels), channelID.String())
		}
	})
	if err != nil {
		return 0, err
	}
	g, err := decodeOne[Guild](guild, fmt.Sprintf("guild %d", guildID))
	if err != nil {
		return 0, err
	}
	m, err := decodeOne[GuildMember](member, fmt.Sprintf("member %d of guild %d", userID, guildID))
	if err != nil {
		return 0, err
	}
	rs, err := memberRoles(roles, guildID, m)
	if err != nil {
		return 0, err
	}
	if channelID == 0 {
		return ComputePermissions(g.OwnerID, rs[0], rs, m, nil, time.Now()), nil
	}
	ch, err := decodeOne[Channel](channel, fmt.Sprintf("channel %d of guild %d", channelID, guildID))
	if err != nil {
		return 0, err
	}
	if ch.IsThread() {
		parent, err := c.Channel(ctx, guildID, ch.ParentID)
		if err != nil {
			return 0, fmt.Errorf("the parent of thread %d: %w", channelID, err)
		}
		ch.PermissionOverwrites = parent.PermissionOverwrites
	}
	return ComputePermissions(g.OwnerID, rs[0], rs, m, &ch, time.Now()), nil
}

// memberRoles decodes the roles that count for member in the guild's
// roles: @everyone (first) and the member's own. Only those: a guild may have
// 250 roles, and decoding them all was most of Permissions' cost.
func memberRoles(cmd *redis.MapStringStringCmd, guildID snowflake.ID, member GuildMember) ([]Role, error) {
	what := fmt.Sprintf("roles of guild %d", guildID)
	all, err := cmd.Result()
	if err != nil {
		return nil, fmt.Errorf("fleet: %s: %w", what, err)
	}
	everyone, ok := all[guildID.String()]
	if !ok {
		return nil, fmt.Errorf("%w: the @everyone role of guild %d", ErrNotCached, guildID)
	}
	vals := []string{everyone}
	for _, id := range member.Roles {
		if v, ok := all[id.String()]; ok && id != guildID {
			vals = append(vals, v)
		}
	}
	return decodeAll[Role](vals, what)
}
