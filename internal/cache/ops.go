package cache

import (
	"bytes"
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
	opMsg      = "MSG"      // channel, json, keep: push, keep the newest
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
	obj, ok := object(d)
	if !ok {
		return nil
	}
	b := &builder{cfg: c}
	if !h.apply(b, obj) {
		return nil
	}
	return b.cells
}

type handler struct {
	kind  Kinds // the kind the dispatch changes
	apply func(b *builder, d map[string]json.RawMessage) bool
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
	"GUILD_ROLE_DELETE":     {Roles, roleDelete},
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

// object parses a JSON object's top level; false for anything else.
func object(raw []byte) (map[string]json.RawMessage, bool) {
	var m map[string]json.RawMessage
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &m) != nil {
		return nil, false
	}
	return m, true
}

// snowflake reads a field holding an ID; false unless it is one (digits),
// so that no dispatch builds a key of its choosing.
func snowflake(m map[string]json.RawMessage, field string) (string, bool) {
	var s string
	if json.Unmarshal(m[field], &s) != nil || !isSnowflake(s) {
		return "", false
	}
	return s, true
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

// userID reads the ID of m's "user" object.
func userID(m map[string]json.RawMessage) (string, bool) {
	user, ok := object(m["user"])
	if !ok {
		return "", false
	}
	return snowflake(user, "id")
}

// stored is m as the cache stores it: without the fields Discord adds in
// dispatches only (drop, guild_id always), compact, keys sorted.
func stored(m map[string]json.RawMessage, drop ...string) string {
	delete(m, "guild_id")
	for _, f := range drop {
		delete(m, f)
	}
	out, _ := json.Marshal(m) // values are valid JSON: Unmarshal checked them
	return string(out)
}

// mergePairs are m's top-level fields (but guild_id and drop) as the script
// merges them: quoted key, compact value.
func mergePairs(m map[string]json.RawMessage, drop ...string) []string {
	delete(m, "guild_id")
	for _, f := range drop {
		delete(m, f)
	}
	pairs := make([]string, 0, 2*len(m))
	var buf bytes.Buffer
	for k, v := range m {
		key, _ := json.Marshal(k)
		buf.Reset()
		_ = json.Compact(&buf, v) // valid: Unmarshal checked it
		pairs = append(pairs, string(key), buf.String())
	}
	return pairs
}

// list reads an array of objects and keys each by keyOf, stored without
// drop; an element that is not an object with a key makes the whole list
// invalid.
func list(raw json.RawMessage, keyOf func(json.RawMessage) (string, bool), drop ...string) ([]string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, true
	}
	var elems []json.RawMessage
	if json.Unmarshal(raw, &elems) != nil {
		return nil, false
	}
	pairs := make([]string, 0, 2*len(elems))
	var buf bytes.Buffer
	for _, e := range elems {
		id, ok := keyOf(e)
		if !ok {
			return nil, false
		}
		pairs = append(pairs, id, storedElem(&buf, e, drop))
	}
	return pairs, true
}

// storedElem is stored for an element keyOf has checked is an object: most
// elements of GUILD_CREATE's arrays carry nothing to drop, and are stored
// as they came (compacted), without the cost of a map.
func storedElem(buf *bytes.Buffer, e json.RawMessage, drop []string) string {
	clean := !bytes.Contains(e, []byte(`"guild_id"`))
	for _, f := range drop {
		clean = clean && !bytes.Contains(e, []byte(`"`+f+`"`))
	}
	if !clean {
		m, _ := object(e) // keyOf decoded e as an object
		return stored(m, drop...)
	}
	buf.Reset()
	_ = json.Compact(buf, e) // valid: keyOf decoded it
	return buf.String()
}

// The keys of GUILD_CREATE's arrays' elements (channels and the like by id,
// members and presences by user.id, voice states by user_id); false unless
// the element is an object with a snowflake there.
func byID(e json.RawMessage) (string, bool) {
	var v struct {
		ID string `json:"id"`
	}
	return v.ID, isObject(e) && json.Unmarshal(e, &v) == nil && isSnowflake(v.ID)
}

func byUserID(e json.RawMessage) (string, bool) {
	var v struct {
		UserID string `json:"user_id"`
	}
	return v.UserID, isObject(e) && json.Unmarshal(e, &v) == nil && isSnowflake(v.UserID)
}

func byUser(e json.RawMessage) (string, bool) {
	var v struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	return v.User.ID, isObject(e) && json.Unmarshal(e, &v) == nil && isSnowflake(v.User.ID)
}

func isObject(e json.RawMessage) bool {
	e = bytes.TrimLeft(e, " \t\r\n")
	return len(e) > 0 && e[0] == '{'
}
