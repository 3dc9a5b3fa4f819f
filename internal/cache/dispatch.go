package cache

import (
	"strconv"

	"github.com/shardfleet/shardfleet/internal/keyspace"
)

// The handlers of handlers: each reads one dispatch type's d and adds its
// operations; false when d is not what Discord sends.

// ready reconciles the shard: a guild READY does not list was left while
// the shard was away.
func ready(b *builder, d obj) bool {
	guilds, ok := elements(d.get("guilds"))
	if !ok {
		return false
	}
	ids := make([]string, 0, len(guilds))
	for _, g := range guilds {
		m, ok := split(g)
		if !ok {
			return false
		}
		id, ok := m.snowflake("id")
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
	keyOf  func(obj) (string, bool)
	drop   []string
}{
	{Channels, keyspace.CacheSuffixChannels, []string{"channels", "threads"}, byID, nil},
	{Roles, keyspace.CacheSuffixRoles, []string{"roles"}, byID, nil},
	{Emojis, keyspace.CacheSuffixEmojis, []string{"emojis"}, byID, nil},
	{Emojis, keyspace.CacheSuffixStickers, []string{"stickers"}, byID, nil},
	{Members, keyspace.CacheSuffixMembers, []string{"members"}, userID, nil},
	{VoiceStates, keyspace.CacheSuffixVoice, []string{"voice_states"}, byUserID, []string{"member"}},
	{Presences, keyspace.CacheSuffixPresences, []string{"presences"}, userID, nil},
}

// guildCreate replaces the guild and every kept kind; the messages of its
// channels that still exist are kept (the cache has no other source of them).
func guildCreate(b *builder, d obj) bool {
	id, ok := d.snowflake("id")
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
			pairs, ok := list(d.get(a), l.keyOf, l.drop...)
			if !ok {
				return false
			}
			args = append(args, pairs...)
		}
		replaces = append(replaces, args)
	}
	b.guild(id)
	b.op(opGuild, d.stored(guildArrays...))
	for _, args := range replaces {
		if args[0] == keyspace.CacheSuffixChannels && b.cfg.Kinds.Has(Messages) {
			b.op(opMsgPrune, keysOf(args[1:])...) // before the old channels are replaced
		}
		b.op(opReplace, args...)
	}
	return true
}

// keysOf are the fields of pairs.
func keysOf(pairs []string) []string {
	keys := make([]string, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		keys = append(keys, pairs[i])
	}
	return keys
}

func unavailable(d obj) bool { return string(d.get("unavailable")) == "true" }

func guildUpdate(b *builder, d obj) bool {
	if !requireGuild(b, d, "id") {
		return false
	}
	b.old(keyspace.CacheSuffixGuild, FieldGuild)
	b.op(opMerge, append([]string{keyspace.CacheSuffixGuild, FieldGuild}, d.mergePairs(guildArrays...)...)...)
	return true
}

// guildDelete marks an outage, or removes a guild the bot left.
func guildDelete(b *builder, d obj) bool {
	if !requireGuild(b, d, "id") {
		return false
	}
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
func guildOf(b *builder, d obj) bool { return requireGuild(b, d, "guild_id") }

// requireGuild starts a change of the guild field names, applied only if
// the guild is cached.
func requireGuild(b *builder, d obj, field string) bool {
	g, ok := d.snowflake(field)
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

func channelSet(update bool) func(*builder, obj) bool {
	return func(b *builder, d obj) bool {
		id, ok := d.snowflake("id")
		if !ok || !guildOf(b, d) {
			return false
		}
		put(b, keyspace.CacheSuffixChannels, id, update, d.stored())
		return true
	}
}

// remove deletes one object of a guild's kind, reading it first.
func remove(b *builder, suffix, id string) {
	b.old(suffix, id)
	b.op(opDel, suffix, id)
}

// removeByField handles a delete naming its object by idField.
func removeByField(suffix, idField string) func(*builder, obj) bool {
	return func(b *builder, d obj) bool {
		id, ok := d.snowflake(idField)
		if !ok || !guildOf(b, d) {
			return false
		}
		remove(b, suffix, id)
		return true
	}
}

// channelDelete also drops the channel's messages.
func channelDelete(b *builder, d obj) bool {
	if !removeByField(keyspace.CacheSuffixChannels, "id")(b, d) {
		return false
	}
	if id, _ := d.snowflake("id"); b.cfg.Kinds.Has(Messages) {
		b.op(opClear, keyspace.CacheSuffixMessages+id)
	}
	return true
}

func roleSet(update bool) func(*builder, obj) bool {
	return func(b *builder, d obj) bool {
		role, ok := split(d.get("role"))
		if !ok {
			return false
		}
		id, ok := role.snowflake("id")
		if !ok || !guildOf(b, d) {
			return false
		}
		put(b, keyspace.CacheSuffixRoles, id, update, role.stored())
		return true
	}
}

// replaceList replaces all of a guild's emojis (or stickers) from the array field.
func replaceList(field, suffix string) func(*builder, obj) bool {
	return func(b *builder, d obj) bool {
		pairs, ok := list(d.get(field), byID)
		if !ok || !guildOf(b, d) {
			return false
		}
		b.op(opReplace, append([]string{suffix}, pairs...)...)
		return true
	}
}

func memberAdd(b *builder, d obj) bool {
	id, ok := userID(d)
	if !ok || !guildOf(b, d) {
		return false
	}
	b.op(opPut, keyspace.CacheSuffixMembers, id, d.stored())
	return true
}

// memberUpdate merges: GUILD_MEMBER_UPDATE does not carry every field of a
// member (e.g. joined_at may be null, deaf and mute are absent).
func memberUpdate(b *builder, d obj) bool {
	id, ok := userID(d)
	if !ok || !guildOf(b, d) {
		return false
	}
	b.old(keyspace.CacheSuffixMembers, id)
	b.op(opMerge, append([]string{keyspace.CacheSuffixMembers, id}, d.mergePairs()...)...)
	return true
}

// memberRemove leaves the user's presence and voice state to their own events.
func memberRemove(b *builder, d obj) bool {
	id, ok := userID(d)
	if !ok || !guildOf(b, d) {
		return false
	}
	remove(b, keyspace.CacheSuffixMembers, id)
	return true
}

func membersChunk(b *builder, d obj) bool {
	members, ok := list(d.get("members"), userID)
	if !ok {
		return false
	}
	var presences []string
	if b.cfg.Kinds.Has(Presences) {
		if presences, ok = list(d.get("presences"), userID); !ok {
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
func voiceState(b *builder, d obj) bool {
	id, ok := d.snowflake("user_id")
	if !ok || !guildOf(b, d) {
		return false
	}
	b.old(keyspace.CacheSuffixVoice, id)
	if _, in := d.snowflake("channel_id"); !in {
		b.op(opDel, keyspace.CacheSuffixVoice, id)
		return true
	}
	b.op(opPut, keyspace.CacheSuffixVoice, id, d.stored("member"))
	return true
}

func presence(b *builder, d obj) bool {
	id, ok := userID(d)
	if !ok || !guildOf(b, d) {
		return false
	}
	put(b, keyspace.CacheSuffixPresences, id, true, d.stored())
	return true
}

// messageChannel reads a message event's channel and starts the change of
// its guild; false for a DM's.
func messageChannel(b *builder, d obj) (string, bool) {
	ch, ok := d.snowflake("channel_id")
	if !ok || !guildOf(b, d) {
		return "", false
	}
	return ch, true
}

// message is messageChannel for an event about one message: its channel and ID.
func message(b *builder, d obj) (ch, id string, ok bool) {
	if id, ok = d.snowflake("id"); !ok {
		return "", "", false
	}
	ch, ok = messageChannel(b, d)
	return ch, id, ok
}

func messageCreate(b *builder, d obj) bool {
	if b.cfg.Messages < 1 {
		return false
	}
	ch, _, ok := message(b, d)
	if !ok {
		return false
	}
	b.op(opMsg, ch, d.stored(), strconv.Itoa(b.cfg.Messages))
	return true
}

// oldMessage reads the message before the change, when events carry `old`.
func (b *builder) oldMessage(ch, id string) {
	if b.cfg.Old {
		b.op(opOldMsg, ch, id)
	}
}

func messageUpdate(b *builder, d obj) bool {
	ch, id, ok := message(b, d)
	if !ok {
		return false
	}
	b.oldMessage(ch, id)
	b.op(opMsgMerge, append([]string{ch, id}, d.mergePairs()...)...)
	return true
}

func messageDelete(b *builder, d obj) bool {
	ch, id, ok := message(b, d)
	if !ok {
		return false
	}
	b.oldMessage(ch, id)
	b.op(opMsgDel, ch, id)
	return true
}

func messageDeleteBulk(b *builder, d obj) bool {
	elems, ok := elements(d.get("ids"))
	if !ok {
		return false
	}
	raw := make([]string, len(elems))
	for i, e := range elems {
		if len(e) < 2 || e[0] != '"' || !isSnowflake(string(e[1:len(e)-1])) {
			return false
		}
		raw[i] = string(e[1 : len(e)-1])
	}
	ch, ok := messageChannel(b, d)
	if !ok {
		return false
	}
	b.op(opMsgDel, append([]string{ch}, raw...)...)
	return true
}
