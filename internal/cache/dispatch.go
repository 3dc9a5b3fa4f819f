package cache

import (
	"encoding/json"
	"strconv"

	"github.com/shardfleet/shardfleet/internal/keyspace"
)

// The handlers of handlers: each reads one dispatch type's d and adds its
// operations; false when d is not what Discord sends.

// ready reconciles the shard: a guild READY does not list was left while
// the shard was away.
func ready(b *builder, d map[string]json.RawMessage) bool {
	var guilds []json.RawMessage
	if json.Unmarshal(d["guilds"], &guilds) != nil {
		return false
	}
	ids := make([]string, 0, len(guilds))
	for _, g := range guilds {
		m, ok := object(g)
		if !ok {
			return false
		}
		id, ok := snowflake(m, "id")
		if !ok {
			return false
		}
		ids = append(ids, id)
	}
	b.guild("")
	b.op(opRecon, ids...)
	return true
}

// kindLists are GUILD_CREATE's arrays per kind: each replaces its kind.
var kindLists = []struct {
	kind   Kinds
	suffix string
	arrays []string
	keyOf  func(json.RawMessage) (string, bool)
	drop   []string
}{
	{Channels, keyspace.CacheSuffixChannels, []string{"channels", "threads"}, byID, nil},
	{Roles, keyspace.CacheSuffixRoles, []string{"roles"}, byID, nil},
	{Emojis, keyspace.CacheSuffixEmojis, []string{"emojis"}, byID, nil},
	{Emojis, keyspace.CacheSuffixStickers, []string{"stickers"}, byID, nil},
	{Members, keyspace.CacheSuffixMembers, []string{"members"}, byUser, nil},
	{VoiceStates, keyspace.CacheSuffixVoice, []string{"voice_states"}, byUserID, []string{"member"}},
	{Presences, keyspace.CacheSuffixPresences, []string{"presences"}, byUser, nil},
}

func guildCreate(b *builder, d map[string]json.RawMessage) bool {
	id, ok := snowflake(d, "id")
	if !ok {
		return false
	}
	if unavailable(d) {
		b.guild(id)
		b.op(opRequire)
		b.op(opUnavail)
		return true
	}
	var replaces [][]string
	for _, l := range kindLists {
		if !b.cfg.Kinds.Has(l.kind) {
			continue
		}
		args := []string{l.suffix}
		for _, a := range l.arrays {
			pairs, ok := list(d[a], l.keyOf, l.drop...)
			if !ok {
				return false
			}
			args = append(args, pairs...)
		}
		replaces = append(replaces, args)
	}
	for _, a := range guildArrays {
		delete(d, a)
	}
	b.guild(id)
	b.op(opGuild, stored(d))
	for _, args := range replaces {
		b.op(opReplace, args...)
	}
	return true
}

func unavailable(d map[string]json.RawMessage) bool {
	var u bool
	return json.Unmarshal(d["unavailable"], &u) == nil && u
}

func guildUpdate(b *builder, d map[string]json.RawMessage) bool {
	id, ok := snowflake(d, "id")
	if !ok {
		return false
	}
	b.guild(id)
	b.op(opRequire)
	b.old(keyspace.CacheSuffixGuild, FieldGuild)
	b.op(opMerge, append([]string{keyspace.CacheSuffixGuild, FieldGuild}, mergePairs(d, guildArrays...)...)...)
	return true
}

// guildDelete marks an outage, or removes a guild the bot left.
func guildDelete(b *builder, d map[string]json.RawMessage) bool {
	id, ok := snowflake(d, "id")
	if !ok {
		return false
	}
	b.guild(id)
	b.op(opRequire)
	b.old(keyspace.CacheSuffixGuild, FieldGuild)
	if unavailable(d) {
		b.op(opUnavail)
	} else {
		b.op(opDrop)
	}
	return true
}

// guildOf starts a change of d's guild; false for a dispatch without one
// (a DM's).
func guildOf(b *builder, d map[string]json.RawMessage) bool {
	g, ok := snowflake(d, "guild_id")
	if !ok {
		return false
	}
	b.guild(g)
	b.op(opRequire)
	return true
}

// put sets one object of a guild's kind, reading the old one first for an
// update.
func put(b *builder, suffix, id string, update bool, value string) {
	if update {
		b.old(suffix, id)
	}
	b.op(opPut, suffix, id, value)
}

func channelSet(update bool) func(*builder, map[string]json.RawMessage) bool {
	return func(b *builder, d map[string]json.RawMessage) bool {
		id, ok := snowflake(d, "id")
		if !ok || !guildOf(b, d) {
			return false
		}
		put(b, keyspace.CacheSuffixChannels, id, update, stored(d))
		return true
	}
}

func channelDelete(b *builder, d map[string]json.RawMessage) bool {
	id, ok := snowflake(d, "id")
	if !ok || !guildOf(b, d) {
		return false
	}
	b.old(keyspace.CacheSuffixChannels, id)
	b.op(opDel, keyspace.CacheSuffixChannels, id)
	if b.cfg.Kinds.Has(Messages) {
		b.op(opClear, keyspace.CacheSuffixMessages+id)
	}
	return true
}

func roleSet(update bool) func(*builder, map[string]json.RawMessage) bool {
	return func(b *builder, d map[string]json.RawMessage) bool {
		role, ok := object(d["role"])
		if !ok {
			return false
		}
		id, ok := snowflake(role, "id")
		if !ok || !guildOf(b, d) {
			return false
		}
		put(b, keyspace.CacheSuffixRoles, id, update, stored(role))
		return true
	}
}

func roleDelete(b *builder, d map[string]json.RawMessage) bool {
	id, ok := snowflake(d, "role_id")
	if !ok || !guildOf(b, d) {
		return false
	}
	b.old(keyspace.CacheSuffixRoles, id)
	b.op(opDel, keyspace.CacheSuffixRoles, id)
	return true
}

// replaceList replaces all of a guild's emojis (or stickers) from the array field.
func replaceList(field, suffix string) func(*builder, map[string]json.RawMessage) bool {
	return func(b *builder, d map[string]json.RawMessage) bool {
		pairs, ok := list(d[field], byID)
		if !ok || !guildOf(b, d) {
			return false
		}
		b.op(opReplace, append([]string{suffix}, pairs...)...)
		return true
	}
}

func memberAdd(b *builder, d map[string]json.RawMessage) bool {
	id, ok := userID(d)
	if !ok || !guildOf(b, d) {
		return false
	}
	b.op(opPut, keyspace.CacheSuffixMembers, id, stored(d))
	return true
}

// memberUpdate merges: GUILD_MEMBER_UPDATE does not carry every field of a
// member (e.g. joined_at may be null, deaf and mute are absent).
func memberUpdate(b *builder, d map[string]json.RawMessage) bool {
	id, ok := userID(d)
	if !ok || !guildOf(b, d) {
		return false
	}
	b.old(keyspace.CacheSuffixMembers, id)
	b.op(opMerge, append([]string{keyspace.CacheSuffixMembers, id}, mergePairs(d)...)...)
	return true
}

// memberRemove leaves the user's presence and voice state to their own events.
func memberRemove(b *builder, d map[string]json.RawMessage) bool {
	id, ok := userID(d)
	if !ok || !guildOf(b, d) {
		return false
	}
	b.old(keyspace.CacheSuffixMembers, id)
	b.op(opDel, keyspace.CacheSuffixMembers, id)
	return true
}

func membersChunk(b *builder, d map[string]json.RawMessage) bool {
	members, ok := list(d["members"], byUser)
	if !ok {
		return false
	}
	var presences []string
	if b.cfg.Kinds.Has(Presences) {
		if presences, ok = list(d["presences"], byUser); !ok {
			return false
		}
	}
	if !guildOf(b, d) {
		return false
	}
	if len(members) > 0 {
		b.op(opPut, append([]string{keyspace.CacheSuffixMembers}, members...)...)
	}
	if len(presences) > 0 {
		b.op(opPut, append([]string{keyspace.CacheSuffixPresences}, presences...)...)
	}
	return true
}

// voiceState stores a user's voice state, or removes it when they left
// (channel_id null). The member Discord attaches is the members kind's.
func voiceState(b *builder, d map[string]json.RawMessage) bool {
	id, ok := snowflake(d, "user_id")
	if !ok || !guildOf(b, d) {
		return false
	}
	b.old(keyspace.CacheSuffixVoice, id)
	if _, in := snowflake(d, "channel_id"); !in {
		b.op(opDel, keyspace.CacheSuffixVoice, id)
		return true
	}
	b.op(opPut, keyspace.CacheSuffixVoice, id, stored(d, "member"))
	return true
}

func presence(b *builder, d map[string]json.RawMessage) bool {
	id, ok := userID(d)
	if !ok || !guildOf(b, d) {
		return false
	}
	put(b, keyspace.CacheSuffixPresences, id, true, stored(d))
	return true
}

// messageIDs reads a message event's channel and guild; false for a DM's.
func messageChannel(b *builder, d map[string]json.RawMessage) (string, bool) {
	ch, ok := snowflake(d, "channel_id")
	if !ok || !guildOf(b, d) {
		return "", false
	}
	return ch, true
}

func messageCreate(b *builder, d map[string]json.RawMessage) bool {
	if _, ok := snowflake(d, "id"); !ok || b.cfg.Messages < 1 {
		return false
	}
	ch, ok := messageChannel(b, d)
	if !ok {
		return false
	}
	b.op(opMsg, ch, stored(d), strconv.Itoa(b.cfg.Messages))
	return true
}

// oldMessage reads the message before the change, when events carry `old`.
func (b *builder) oldMessage(ch, id string) {
	if b.cfg.Old {
		b.op(opOldMsg, ch, id)
	}
}

func messageUpdate(b *builder, d map[string]json.RawMessage) bool {
	id, ok := snowflake(d, "id")
	if !ok {
		return false
	}
	ch, ok := messageChannel(b, d)
	if !ok {
		return false
	}
	b.oldMessage(ch, id)
	b.op(opMsgMerge, append([]string{ch, id}, mergePairs(d)...)...)
	return true
}

func messageDelete(b *builder, d map[string]json.RawMessage) bool {
	id, ok := snowflake(d, "id")
	if !ok {
		return false
	}
	ch, ok := messageChannel(b, d)
	if !ok {
		return false
	}
	b.oldMessage(ch, id)
	b.op(opMsgDel, ch, id)
	return true
}

func messageDeleteBulk(b *builder, d map[string]json.RawMessage) bool {
	var raw []string
	if json.Unmarshal(d["ids"], &raw) != nil {
		return false
	}
	for _, id := range raw {
		if !isSnowflake(id) {
			return false
		}
	}
	ch, ok := messageChannel(b, d)
	if !ok {
		return false
	}
	b.op(opMsgDel, append([]string{ch}, raw...)...)
	return true
}
