package gatewaytest

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/disgoorg/snowflake/v2"

	"github.com/shardfleet/shardfleet/internal/statediff"
)

// Object is one Discord object as encoding/json decodes it (ids are strings,
// numbers float64).
type Object = map[string]any

// State is the cache contract's JSON shape (issue 11): what GET /_fake/state
// prints (the fake's ground truth) and what `worker cache dump` prints. Every
// stored object has "guild_id" removed; voice states also drop "member".
type State struct {
	Guilds map[string]*GuildState `json:"guilds"`
	// MessageLimit is how many messages per channel ApplyDispatch keeps (the
	// last ones); 0 keeps none. It is not part of the JSON.
	MessageLimit int `json:"-"`
}

// GuildState is one guild of a State. Channels holds channels and threads;
// members, voice states and presences are keyed by user id.
type GuildState struct {
	Guild       Object              `json:"guild"`
	Unavailable bool                `json:"unavailable"`
	Channels    map[string]Object   `json:"channels"`
	Roles       map[string]Object   `json:"roles"`
	Emojis      map[string]Object   `json:"emojis"`
	Stickers    map[string]Object   `json:"stickers"`
	Members     map[string]Object   `json:"members"`
	VoiceStates map[string]Object   `json:"voice_states"`
	Presences   map[string]Object   `json:"presences"`
	Messages    map[string][]Object `json:"messages"`
}

// NewState returns an empty state that keeps messageLimit messages per channel.
func NewState(messageLimit int) *State {
	return &State{Guilds: make(map[string]*GuildState), MessageLimit: messageLimit}
}

func newGuildState() *GuildState {
	gs := &GuildState{}
	gs.fill()
	return gs
}

// fill makes gs's missing maps empty (a state decoded from JSON may omit
// kinds), so that rules can write to them.
func (gs *GuildState) fill() {
	if gs.Guild == nil {
		gs.Guild = Object{}
	}
	for _, m := range []*map[string]Object{&gs.Channels, &gs.Roles, &gs.Emojis, &gs.Stickers,
		&gs.Members, &gs.VoiceStates, &gs.Presences} {
		if *m == nil {
			*m = map[string]Object{}
		}
	}
	if gs.Messages == nil {
		gs.Messages = map[string][]Object{}
	}
}

// guildArrays are GUILD_CREATE's arrays: never part of the "guild" object.
var guildArrays = []string{"channels", "threads", "roles", "emojis", "stickers", "members", "voice_states",
	"presences", "stage_instances", "guild_scheduled_events", "soundboard_sounds"}

// appliers are the contract's rules, one per dispatch type.
var appliers = map[string]func(*State, Object) error{
	"READY":                 applyReady,
	"GUILD_CREATE":          applyGuildCreate,
	"GUILD_UPDATE":          applyGuildUpdate,
	"GUILD_DELETE":          applyGuildDelete,
	"CHANNEL_CREATE":        applyChannelSet,
	"CHANNEL_UPDATE":        applyChannelSet,
	"THREAD_CREATE":         applyChannelSet,
	"THREAD_UPDATE":         applyChannelSet,
	"CHANNEL_DELETE":        applyChannelDelete,
	"THREAD_DELETE":         applyChannelDelete,
	"GUILD_ROLE_CREATE":     applyRoleSet,
	"GUILD_ROLE_UPDATE":     applyRoleSet,
	"GUILD_ROLE_DELETE":     applyRoleDelete,
	"GUILD_EMOJIS_UPDATE":   func(st *State, d Object) error { return applyReplace(st, d, "emojis") },
	"GUILD_STICKERS_UPDATE": func(st *State, d Object) error { return applyReplace(st, d, "stickers") },
	"GUILD_MEMBER_ADD":      applyMemberAdd,
	"GUILD_MEMBER_UPDATE":   applyMemberUpdate,
	"GUILD_MEMBER_REMOVE":   applyMemberRemove,
	"GUILD_MEMBERS_CHUNK":   applyMembersChunk,
	"VOICE_STATE_UPDATE":    applyVoiceState,
	"PRESENCE_UPDATE":       applyPresence,
	"MESSAGE_CREATE":        applyMessageCreate,
	"MESSAGE_UPDATE":        applyMessageUpdate,
	"MESSAGE_DELETE":        applyMessageDelete,
	"MESSAGE_DELETE_BULK":   applyMessageDeleteBulk,
}

// ApplyDispatch applies one received dispatch to st by the cache contract's
// rules (READY reconciles the shard's guilds; GUILD_CREATE replaces a guild
// and keeps the messages of its channels that still exist; the others
// change one kind of a guild st holds: a change to a guild no GUILD_CREATE
// brought, or a message of a channel the guild does not hold, changes
// nothing, as in the fleet's cache; docs/cache.md says why). It is the oracle a cache is checked against: applying
// every dispatch a client received, in order, to NewState(N) reproduces the
// fake's State. A type the contract does not name is ignored; a d that is
// not an object with the ids its type needs is an error and changes nothing.
func ApplyDispatch(st *State, t string, d json.RawMessage) error {
	apply := appliers[t]
	if apply == nil {
		return nil
	}
	var obj Object
	if err := json.Unmarshal(d, &obj); err != nil || obj == nil {
		return fmt.Errorf("gatewaytest: ApplyDispatch %s: d is not a JSON object", t)
	}
	if err := apply(st, obj); err != nil {
		return fmt.Errorf("gatewaytest: ApplyDispatch %s: %w", t, err)
	}
	return nil
}

// idOf returns obj[key] as a snowflake string, or "".
func idOf(obj Object, key string) string {
	s, _ := obj[key].(string)
	if _, err := snowflake.Parse(s); err != nil {
		return ""
	}
	return s
}

// userIDOf returns obj.user.id.
func userIDOf(obj Object) string {
	u, _ := obj["user"].(map[string]any)
	return idOf(u, "id")
}

func errMissing(field string) error { return fmt.Errorf("%s: want a snowflake string", field) }

// guildOf returns the guild of d.guild_id once check (nil: none) accepts d;
// nil when st does not hold the guild: a change to a guild no GUILD_CREATE
// brought changes nothing (Discord sends none before it; a cache could not
// place it).
func (st *State) guildOf(d Object, check func() error) (*GuildState, error) {
	gid := idOf(d, "guild_id")
	if gid == "" {
		return nil, errMissing("guild_id")
	}
	if check != nil {
		if err := check(); err != nil {
			return nil, err
		}
	}
	return st.held(gid), nil
}

// held returns guild gid, nil when st does not hold it.
func (st *State) held(gid string) *GuildState {
	gs := st.Guilds[gid]
	if gs != nil {
		gs.fill()
	}
	return gs
}

// target returns d's guild (nil: not held) and the id at idPath ("id", or "role.id": a
// field of an object in d).
func (st *State) target(d Object, idPath string) (*GuildState, string, error) {
	src, field := d, idPath
	if obj, f, nested := strings.Cut(idPath, "."); nested {
		src, _ = d[obj].(map[string]any)
		field = f
	}
	id := idOf(src, field)
	gs, err := st.guildOf(d, func() error {
		if id == "" {
			return errMissing(idPath)
		}
		return nil
	})
	return gs, id, err
}

// stored is d as a cache keeps it: without guild_id.
func stored(d Object) Object {
	delete(d, "guild_id")
	return d
}

func applyReady(st *State, d Object) error {
	listed := map[string]bool{}
	guilds, _ := d["guilds"].([]any)
	for _, g := range guilds {
		o, _ := g.(map[string]any)
		listed[idOf(o, "id")] = true
	}
	shardID, count := 0, 1
	if sh, ok := d["shard"].([]any); ok && len(sh) == 2 {
		a, _ := sh[0].(float64)
		b, _ := sh[1].(float64)
		if b < 1 || a < 0 || a >= b {
			return fmt.Errorf("shard %v: want [id, count]", sh)
		}
		shardID, count = int(a), int(b)
	}
	for gid := range st.Guilds {
		id, err := snowflake.Parse(gid)
		if err == nil && shardOf(id, count) == shardID && !listed[gid] {
			delete(st.Guilds, gid)
		}
	}
	return nil
}

func applyGuildCreate(st *State, d Object) error {
	gid := idOf(d, "id")
	if gid == "" {
		return errMissing("id")
	}
	if u, _ := d["unavailable"].(bool); u { // a guild Discord could not load: nothing but its outage is known
		if gs := st.held(gid); gs != nil {
			gs.Unavailable = true
		}
		return nil
	}
	gs := newGuildState()
	for _, kind := range []struct {
		arrays []string
		dst    map[string]Object
		key    func(Object) string
	}{
		{[]string{"channels", "threads"}, gs.Channels, func(o Object) string { return idOf(o, "id") }},
		{[]string{"roles"}, gs.Roles, func(o Object) string { return idOf(o, "id") }},
		{[]string{"emojis"}, gs.Emojis, func(o Object) string { return idOf(o, "id") }},
		{[]string{"stickers"}, gs.Stickers, func(o Object) string { return idOf(o, "id") }},
		{[]string{"members"}, gs.Members, userIDOf},
		{[]string{"voice_states"}, gs.VoiceStates, func(o Object) string { return idOf(o, "user_id") }},
		{[]string{"presences"}, gs.Presences, userIDOf},
	} {
		for _, a := range kind.arrays {
			list, _ := d[a].([]any)
			for _, x := range list {
				if o, ok := x.(map[string]any); ok && kind.key(o) != "" {
					o = stored(o)
					if a == "voice_states" {
						delete(o, "member")
					}
					kind.dst[kind.key(o)] = o
				}
			}
		}
	}
	for _, a := range guildArrays {
		delete(d, a)
	}
	gs.Guild = stored(d)
	if old := st.Guilds[gid]; old != nil {
		for ch, msgs := range old.Messages {
			if gs.Channels[ch] != nil {
				gs.Messages[ch] = msgs
			}
		}
	}
	if st.Guilds == nil {
		st.Guilds = make(map[string]*GuildState)
	}
	st.Guilds[gid] = gs
	return nil
}

func applyGuildUpdate(st *State, d Object) error {
	gid := idOf(d, "id")
	if gid == "" {
		return errMissing("id")
	}
	for _, a := range guildArrays {
		delete(d, a)
	}
	if gs := st.held(gid); gs != nil {
		maps.Copy(gs.Guild, stored(d))
	}
	return nil
}

func applyGuildDelete(st *State, d Object) error {
	gid := idOf(d, "id")
	if gid == "" {
		return errMissing("id")
	}
	if u, _ := d["unavailable"].(bool); u {
		if gs := st.held(gid); gs != nil {
			gs.Unavailable = true
		}
		return nil
	}
	delete(st.Guilds, gid)
	return nil
}

func applyChannelSet(st *State, d Object) error {
	gs, id, err := st.target(d, "id")
	if gs == nil || err != nil {
		return err
	}
	gs.Channels[id] = stored(d)
	return nil
}

func applyChannelDelete(st *State, d Object) error {
	gs, id, err := st.target(d, "id")
	if gs == nil || err != nil {
		return err
	}
	delete(gs.Channels, id)
	delete(gs.Messages, id)
	return nil
}

func applyRoleSet(st *State, d Object) error {
	gs, id, err := st.target(d, "role.id")
	if gs == nil || err != nil {
		return err
	}
	gs.Roles[id] = d["role"].(map[string]any)
	return nil
}

func applyRoleDelete(st *State, d Object) error {
	gs, id, err := st.target(d, "role_id")
	if gs == nil || err != nil {
		return err
	}
	delete(gs.Roles, id)
	return nil
}

// applyReplace replaces all emojis or stickers with d[field].
func applyReplace(st *State, d Object, field string) error {
	list, ok := d[field].([]any)
	gs, err := st.guildOf(d, func() error {
		if !ok {
			return fmt.Errorf("%s: want an array", field)
		}
		return nil
	})
	if gs == nil || err != nil {
		return err
	}
	dst := map[string]Object{}
	for _, x := range list {
		if o, ok := x.(map[string]any); ok && idOf(o, "id") != "" {
			dst[idOf(o, "id")] = stored(o)
		}
	}
	if field == "emojis" {
		gs.Emojis = dst
	} else {
		gs.Stickers = dst
	}
	return nil
}

func applyMemberAdd(st *State, d Object) error {
	gs, uid, err := st.target(d, "user.id")
	if gs == nil || err != nil {
		return err
	}
	gs.Members[uid] = stored(d)
	return nil
}

func applyMemberUpdate(st *State, d Object) error {
	gs, uid, err := st.target(d, "user.id")
	if gs == nil || err != nil {
		return err
	}
	m := gs.Members[uid]
	if m == nil {
		m = Object{}
		gs.Members[uid] = m
	}
	maps.Copy(m, stored(d))
	return nil
}

func applyMemberRemove(st *State, d Object) error {
	gs, uid, err := st.target(d, "user.id")
	if gs == nil || err != nil {
		return err
	}
	delete(gs.Members, uid)
	return nil
}

func applyMembersChunk(st *State, d Object) error {
	gs, err := st.guildOf(d, nil)
	if gs == nil || err != nil {
		return err
	}
	for field, dst := range map[string]map[string]Object{"members": gs.Members, "presences": gs.Presences} {
		list, _ := d[field].([]any)
		for _, x := range list {
			if o, ok := x.(map[string]any); ok && userIDOf(o) != "" {
				dst[userIDOf(o)] = stored(o)
			}
		}
	}
	return nil
}

func applyVoiceState(st *State, d Object) error {
	if idOf(d, "guild_id") == "" {
		return nil // a DM call's voice state: no guild to keep it in
	}
	gs, uid, err := st.target(d, "user_id")
	if gs == nil || err != nil {
		return err
	}
	if d["channel_id"] == nil {
		delete(gs.VoiceStates, uid)
		return nil
	}
	delete(d, "member")
	gs.VoiceStates[uid] = stored(d)
	return nil
}

func applyPresence(st *State, d Object) error {
	gs, uid, err := st.target(d, "user.id")
	if gs == nil || err != nil {
		return err
	}
	gs.Presences[uid] = stored(d)
	return nil
}

// messageOf returns d's guild and channel; nil for a DM (no guild_id).
func (st *State) messageOf(d Object) (*GuildState, string, error) {
	if idOf(d, "guild_id") == "" {
		return nil, "", nil
	}
	ch := idOf(d, "channel_id")
	gs, err := st.guildOf(d, func() error {
		if ch == "" {
			return errMissing("channel_id")
		}
		return nil
	})
	return gs, ch, err
}

func applyMessageCreate(st *State, d Object) error {
	if idOf(d, "id") == "" {
		return errMissing("id")
	}
	if st.MessageLimit <= 0 {
		return nil
	}
	gs, ch, err := st.messageOf(d)
	if gs == nil || err != nil || gs.Channels[ch] == nil { // a channel it does not hold: no list would find it
		return err
	}
	msgs := append(gs.Messages[ch], stored(d))
	if len(msgs) > st.MessageLimit {
		msgs = slices.Clone(msgs[len(msgs)-st.MessageLimit:])
	}
	gs.Messages[ch] = msgs
	return nil
}

func applyMessageUpdate(st *State, d Object) error {
	gs, ch, err := st.messageOf(d)
	if gs == nil || err != nil {
		return err
	}
	id := idOf(d, "id")
	for _, m := range gs.Messages[ch] {
		if m["id"] == id {
			maps.Copy(m, stored(d))
		}
	}
	return nil
}

func applyMessageDelete(st *State, d Object) error {
	return removeMessages(st, d, []any{d["id"]})
}

func applyMessageDeleteBulk(st *State, d Object) error {
	ids, _ := d["ids"].([]any)
	return removeMessages(st, d, ids)
}

func removeMessages(st *State, d Object, ids []any) error {
	gs, ch, err := st.messageOf(d)
	if gs == nil || err != nil {
		return err
	}
	msgs := slices.DeleteFunc(gs.Messages[ch], func(m Object) bool { return slices.Contains(ids, m["id"]) })
	if len(msgs) == 0 {
		delete(gs.Messages, ch)
		return nil
	}
	gs.Messages[ch] = msgs
	return nil
}

// Diff compares two states by the contract's rules (statediff: parsed JSON,
// field by field; a guild on one side only is one difference, a missing map
// or list equals an empty one) and returns the differences, at most max of
// them (max <= 0: all), each naming the guild, field and id.
// kinds limits the comparison to those kinds of the CACHE setting (guilds,
// channels, roles, emojis, voice_states, members, presences, messages);
// none compares every field. An unknown kind is the one line returned.
func Diff(want, got *State, max int, kinds ...string) []string {
	d, err := statediff.Diff(appendJSON(nil, want), appendJSON(nil, got), max, kinds...)
	if err != nil {
		return []string{err.Error()}
	}
	return d
}

func sortedKeys[V any](m map[string]V) []string {
	keys := slices.Collect(maps.Keys(m))
	sort.Strings(keys)
	return keys
}
