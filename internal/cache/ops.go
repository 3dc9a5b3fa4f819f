package cache

import (
	"encoding/json"
	"strconv"

	"github.com/shardfleet/shardfleet/internal/keyspace"
)

// Config says what the cache keeps.
type Config struct {
	Kinds Kinds
	// Messages is how many messages are kept per channel (with Kinds
	// holding Messages).
	Messages int
	// Old makes update and delete events carry the cached object as it was
	// before the event (the stream entry's `old` field).
	Old bool
}

// The operations of a change, as the commit script reads them (lua.go): an
// opcode, its argument count, its arguments. Suffixes are keyspace's
// CacheSuffix* (a messages suffix with its channel ID); a pair is a field and
// a JSON value; merge pairs are a quoted JSON key and a compact JSON value.
const (
	opRequire  = "REQ"      // stop unless the guild is cached
	opGuild    = "GUILD"    // json: store the guild, available, in the shard's set
	opUnavail  = "UNAVAIL"  // mark the guild unavailable
	opDrop     = "DROP"     // remove the guild with all its kinds
	opRecon    = "RECON"    // guild IDs...: drop the shard's other guilds
	opOld      = "OLD"      // suffix, field: read the object before the change
	opPut      = "PUT"      // suffix, pairs...: HSET
	opReplace  = "REPLACE"  // suffix, pairs...: DEL then HSET
	opDel      = "DEL"      // suffix, fields...: HDEL
	opClear    = "CLEAR"    // suffix: DEL
	opMerge    = "MERGE"    // suffix, field, merge pairs...: merge top-level fields
	opOldMsg   = "OLDMSG"   // channel, id: read the message before the change
	opMsg      = "MSG"      // channel, json, keep: push to a cached channel, keep the newest
	opMsgPrune = "MSGPRUNE" // channel IDs...: drop the lists of the cached channels not named
	opMsgMerge = "MSGMERGE" // channel, id, merge pairs...
	opMsgDel   = "MSGDEL"   // channel, ids...
)

// The fields of a guild's HASH (keyspace.CacheSuffixGuild).
const (
	FieldGuild       = "guild"
	FieldUnavailable = "unavailable"
	FieldShard       = "shard"
)

// Changes returns the cache operations of one dispatch: its guild ID then the
// operations, as the commit script's per-event arguments; nil when the
// dispatch changes nothing the cache keeps (decided from t before d is
// parsed), or d is not what Discord sends (untrusted input changes nothing).
func (c Config) Changes(t string, d []byte) []string {
	h, ok := handlers[t]
	if !ok || c.Kinds&h.kind == 0 {
		return nil
	}
	o, ok := parse(d)
	if !ok {
		return nil
	}
	b := &builder{cfg: c}
	if !h.apply(b, o) {
		return nil
	}
	return b.cells
}

type handler struct {
	kind  Kinds // the kind the dispatch changes
	apply func(b *builder, d obj) bool
}

var handlers = map[string]handler{
	"READY":                 {Guilds, ready},
	"GUILD_CREATE":          {Guilds, guildCreate},
	"GUILD_UPDATE":          {Guilds, guildUpdate},
	"GUILD_DELETE":          {Guilds, guildDelete},
	"CHANNEL_CREATE":        {Channels, channelSet(false)},
	"CHANNEL_UPDATE":        {Channels, channelSet(true)},
	"THREAD_CREATE":         {Channels, channelSet(false)},
	"THREAD_UPDATE":         {Channels, channelSet(true)},
	"CHANNEL_DELETE":        {Channels, channelDelete},
	"THREAD_DELETE":         {Channels, channelDelete},
	"GUILD_ROLE_CREATE":     {Roles, roleSet(false)},
	"GUILD_ROLE_UPDATE":     {Roles, roleSet(true)},
	"GUILD_ROLE_DELETE":     {Roles, removeByField(keyspace.CacheSuffixRoles, "role_id")},
	"GUILD_EMOJIS_UPDATE":   {Emojis, replaceList("emojis", keyspace.CacheSuffixEmojis)},
	"GUILD_STICKERS_UPDATE": {Emojis, replaceList("stickers", keyspace.CacheSuffixStickers)},
	"GUILD_MEMBER_ADD":      {Members, memberAdd},
	"GUILD_MEMBER_UPDATE":   {Members, memberUpdate},
	"GUILD_MEMBER_REMOVE":   {Members, memberRemove},
	"GUILD_MEMBERS_CHUNK":   {Members, membersChunk},
	"VOICE_STATE_UPDATE":    {VoiceStates, voiceState},
	"PRESENCE_UPDATE":       {Presences, presence},
	"MESSAGE_CREATE":        {Messages, messageCreate},
	"MESSAGE_UPDATE":        {Messages, messageUpdate},
	"MESSAGE_DELETE":        {Messages, messageDelete},
	"MESSAGE_DELETE_BULK":   {Messages, messageDeleteBulk},
}

// guildArrays are GUILD_CREATE's arrays: kept under their own kinds (or not
// at all), never in the guild's own object.
var guildArrays = []string{"channels", "threads", "roles", "emojis", "stickers", "members", "voice_states",
	"presences", "stage_instances", "guild_scheduled_events", "soundboard_sounds"}

// builder collects one dispatch's cells: the guild ID, then operations.
type builder struct {
	cfg   Config
	cells []string
}

func (b *builder) guild(id string) { b.cells = append(b.cells, id) }

func (b *builder) op(code string, args ...string) {
	b.cells = append(append(b.cells, code, strconv.Itoa(len(args))), args...)
}

// old reads suffix's field before the change, when events carry `old`.
func (b *builder) old(suffix, field string) {
	if b.cfg.Old {
		b.op(opOld, suffix, field)
	}
}

func isSnowflake(s string) bool {
	if len(s) == 0 || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// userID reads the ID of o's "user" object.
func userID(o obj) (string, bool) {
	user, ok := split(o.get("user"))
	if !ok {
		return "", false
	}
	return user.snowflake("id")
}

// list reads an array of objects and keys each by keyOf, stored without
// drop; an element that is not an object with a key makes the whole list
// invalid.
func list(raw json.RawMessage, keyOf func(obj) (string, bool), drop ...string) ([]string, bool) {
	elems, ok := elements(raw)
	if !ok {
		return nil, false
	}
	pairs := make([]string, 0, 2*len(elems))
	for _, e := range elems {
		o, ok := split(e)
		if !ok {
			return nil, false
		}
		id, ok := keyOf(o)
		if !ok {
			return nil, false
		}
		pairs = append(pairs, id, o.stored(drop...))
	}
	return pairs, true
}

// The keys of GUILD_CREATE's arrays' elements: channels and the like by id,
// voice states by user_id, members and presences by user.id (userID).
func byID(o obj) (string, bool)     { return o.snowflake("id") }
func byUserID(o obj) (string, bool) { return o.snowflake("user_id") }
