package gatewaytest

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/disgoorg/snowflake/v2"
)

// ChangeKind names one kind of world change (the path of its control,
// POST /_fake/world/<kind>).
type ChangeKind string

// The world changes. Each sends what Discord would, in order, to every
// session of the guild's shard.
const (
	ChannelCreate     ChangeKind = "channel-create"      // Fields (type 0, 2, 4, 5, 13 or 15; default 0); Channel: its category. CHANNEL_CREATE
	ChannelUpdate     ChangeKind = "channel-update"      // ID, Fields. CHANNEL_UPDATE
	ChannelDelete     ChangeKind = "channel-delete"      // ID. THREAD_DELETE of its threads, CHANNEL_UPDATE of a category's children, VOICE_STATE_UPDATE (leave) of its voice, then CHANNEL_DELETE
	ThreadCreate      ChangeKind = "thread-create"       // Channel (a text channel), Fields. THREAD_CREATE
	ThreadUpdate      ChangeKind = "thread-update"       // ID, Fields. THREAD_UPDATE
	ThreadDelete      ChangeKind = "thread-delete"       // ID. THREAD_DELETE {id, guild_id, parent_id, type}
	RoleCreate        ChangeKind = "role-create"         // Fields. GUILD_ROLE_CREATE
	RoleUpdate        ChangeKind = "role-update"         // ID, Fields. GUILD_ROLE_UPDATE
	RoleDelete        ChangeKind = "role-delete"         // ID (not @everyone). GUILD_MEMBER_UPDATE of its members, then GUILD_ROLE_DELETE
	EmojisUpdate      ChangeKind = "emojis-update"       // ID+Fields: change one; Fields alone: add one; IDs: remove. GUILD_EMOJIS_UPDATE
	StickersUpdate    ChangeKind = "stickers-update"     // as emojis-update. GUILD_STICKERS_UPDATE
	MemberAdd         ChangeKind = "member-add"          // User (0: a new user), Fields. GUILD_MEMBER_ADD
	MemberUpdate      ChangeKind = "member-update"       // User, Fields (roles must exist). GUILD_MEMBER_UPDATE
	MemberRemove      ChangeKind = "member-remove"       // User. VOICE_STATE_UPDATE (leave) if in voice, then GUILD_MEMBER_REMOVE
	Voice             ChangeKind = "voice"               // User, Channel (a voice channel: join or move; 0: leave), Fields. VOICE_STATE_UPDATE
	Presence          ChangeKind = "presence"            // User, Fields (status, activities...). PRESENCE_UPDATE
	GuildUpdate       ChangeKind = "guild-update"        // Fields. GUILD_UPDATE
	GuildLeave        ChangeKind = "guild-leave"         // the bot leaves: GUILD_DELETE {id}; out of the world, READY and GuildIDs
	GuildUnavailable  ChangeKind = "guild-unavailable"   // an outage: GUILD_DELETE {id, unavailable:true}
	GuildAvailable    ChangeKind = "guild-available"     // the outage ends: GUILD_CREATE
	MessageCreate     ChangeKind = "message-create"      // Channel, User (0: the bot), Fields. MESSAGE_CREATE
	MessageUpdate     ChangeKind = "message-update"      // Channel, ID, Fields. MESSAGE_UPDATE
	MessageDelete     ChangeKind = "message-delete"      // Channel, ID. MESSAGE_DELETE
	MessageDeleteBulk ChangeKind = "message-delete-bulk" // Channel, IDs. MESSAGE_DELETE_BULK
)

// Change is one change of the world: a kind and the guild it changes, plus
// what that kind needs (see the kinds). Fields are set over the new or
// current object (top-level); they may not set the object's ids or type.
type Change struct {
	Kind    ChangeKind     `json:"-"`
	Guild   snowflake.ID   `json:"guild_id"`
	ID      snowflake.ID   `json:"id,omitempty"`
	Channel snowflake.ID   `json:"channel_id,omitempty"`
	User    snowflake.ID   `json:"user_id,omitempty"`
	IDs     []snowflake.ID `json:"ids,omitempty"`
	Fields  Object         `json:"fields,omitempty"`
}

// changers are the kinds' implementations.
var changers = map[ChangeKind]func(*worldTx, Change) (Object, error){
	ChannelCreate: changeChannelCreate, ChannelUpdate: channelUpdater(isGuildChannel, "channel", "CHANNEL_UPDATE"), ChannelDelete: changeChannelDelete,
	ThreadCreate: changeThreadCreate, ThreadUpdate: channelUpdater(isThread, "thread", "THREAD_UPDATE"), ThreadDelete: changeThreadDelete,
	RoleCreate: changeRoleCreate, RoleUpdate: changeRoleUpdate, RoleDelete: changeRoleDelete,
	EmojisUpdate: changeEmojis, StickersUpdate: changeStickers,
	MemberAdd: changeMemberAdd, MemberUpdate: changeMemberUpdate, MemberRemove: changeMemberRemove,
	Voice: changeVoice, Presence: changePresence,
	GuildUpdate: changeGuildUpdate, GuildLeave: changeGuildLeave,
	GuildUnavailable: changeGuildUnavailable, GuildAvailable: changeGuildAvailable,
	MessageCreate: changeMessageCreate, MessageUpdate: changeMessageUpdate,
	MessageDelete: changeMessageDelete, MessageDeleteBulk: changeMessageDeleteBulk,
}

// ChangeKinds lists every kind, sorted.
func ChangeKinds() []ChangeKind { return slices.Sorted(maps.Keys(changers)) }

// protected are the fields a change may not set, whatever the kind.
var protected = []string{"id", "guild_id", "type", "user", "user_id", "channel_id", "role", "unavailable"}

// Change applies one change to the world and sends the dispatches Discord
// would to every session of the guild's shard (live ones at once,
// disconnected resumable ones buffered for RESUME). With no session at all
// the world still changes, so the shard's next READY and GUILD_CREATE show
// it. It returns the object created or changed (nil for deletions). An
// invalid change (unknown kind, guild, object, or a protected field) is an
// error and changes nothing; so is any change but guild-leave and
// guild-available of an unavailable guild, as Discord sends nothing then.
func (s *Server) Change(ch Change) (Object, error) {
	f := changers[ch.Kind]
	if f == nil {
		return nil, fmt.Errorf("gatewaytest: change: unknown kind %q", ch.Kind)
	}
	for _, k := range protected {
		if _, ok := ch.Fields[k]; ok && !(k == "type" && ch.Kind == ChannelCreate) {
			return nil, fmt.Errorf("gatewaytest: change %s: fields may not set %q", ch.Kind, k)
		}
	}
	if ch.Fields != nil { // as decoded JSON (3, not int(3)), like the rest of the world
		b, err := json.Marshal(ch.Fields)
		if err != nil {
			return nil, fmt.Errorf("gatewaytest: change %s: fields: %w", ch.Kind, err)
		}
		ch.Fields = nil
		_ = json.Unmarshal(b, &ch.Fields) // what Marshal made decodes
	}
	s.mu.Lock()
	tx := &worldTx{s: s, g: ch.Guild, now: time.Now()}
	obj, err := s.change(tx, ch, f)
	s.mu.Unlock()
	s.waitSlow(tx.slow)
	if err != nil {
		return nil, fmt.Errorf("gatewaytest: change %s of guild %s: %w", ch.Kind, ch.Guild, err)
	}
	return obj, nil
}

// change runs f on the guild's state. Needs s.mu.
func (s *Server) change(tx *worldTx, ch Change, f func(*worldTx, Change) (Object, error)) (Object, error) {
	gs, meta, err := s.worldGuild(ch.Guild)
	if err != nil {
		return nil, err
	}
	if gs.Unavailable && ch.Kind != GuildLeave && ch.Kind != GuildAvailable {
		return nil, errors.New("the guild is unavailable")
	}
	tx.gs, tx.meta = gs, meta
	return f(tx, ch)
}

// merge sets fields over a copy of obj.
func merge(obj, fields Object) Object {
	out := maps.Clone(obj)
	maps.Copy(out, fields)
	return out
}

// lookup returns kind[id], or an error naming what is missing.
func lookup(kind map[string]Object, what string, id snowflake.ID) (Object, error) {
	if o := kind[id.String()]; o != nil {
		return o, nil
	}
	return nil, fmt.Errorf("no %s %s", what, id)
}

func (tx *worldTx) channel(id snowflake.ID, ok func(Object) bool, what string) (Object, error) {
	c, err := lookup(tx.gs.Channels, what, id)
	if err == nil && !ok(c) {
		err = fmt.Errorf("channel %s is not a %s", id, what)
	}
	return c, err
}

func isCategory(c Object) bool { return channelType(c) == chanCategory }
func isVoice(c Object) bool    { t := channelType(c); return t == chanVoice || t == chanStage }
func isTextParent(c Object) bool {
	t := channelType(c)
	return t == chanText || t == chanAnnouncement || t == chanForum
}
func isGuildChannel(c Object) bool { return !isThread(c) }
func hasMessages(c Object) bool    { return !isCategory(c) && channelType(c) != chanForum }

func changeChannelCreate(tx *worldTx, ch Change) (Object, error) {
	typ, _ := ch.Fields["type"].(float64)
	if !slices.Contains([]float64{chanText, chanVoice, chanCategory, chanAnnouncement, chanStage, chanForum}, typ) {
		return nil, fmt.Errorf("fields.type %v: want 0, 2, 4, 5, 13 or 15", ch.Fields["type"])
	}
	var parent any
	if ch.Channel != 0 {
		if _, err := tx.channel(ch.Channel, isCategory, "category"); err != nil {
			return nil, err
		}
		parent = ch.Channel.String()
	}
	id, err := tx.newID()
	if err != nil {
		return nil, err
	}
	c := merge(newChannel(id, int(typ), "channel-"+id[len(id)-4:], len(tx.gs.Channels), parent), ch.Fields)
	return c, tx.emit("CHANNEL_CREATE", tx.withGuild(c))
}

// channelUpdater is channel-update and thread-update: the fields over the
// channel, sent whole as t.
func channelUpdater(ok func(Object) bool, what, t string) func(*worldTx, Change) (Object, error) {
	return func(tx *worldTx, ch Change) (Object, error) {
		c, err := tx.channel(ch.ID, ok, what)
		if err != nil {
			return nil, err
		}
		c = merge(c, ch.Fields)
		return c, tx.emit(t, tx.withGuild(c))
	}
}

func changeChannelDelete(tx *worldTx, ch Change) (Object, error) {
	c, err := tx.channel(ch.ID, isGuildChannel, "channel")
	if err != nil {
		return nil, err
	}
	id := ch.ID.String()
	for _, x := range sortedValues(tx.gs.Channels) {
		o := x.(Object)
		switch {
		case o["parent_id"] != id:
		case isThread(o):
			err = errors.Join(err, tx.emit("THREAD_DELETE", threadDeleteData(tx, o)))
		default:
			err = errors.Join(err, tx.emit("CHANNEL_UPDATE", tx.withGuild(merge(o, Object{"parent_id": nil}))))
		}
	}
	for _, x := range sortedValues(tx.gs.VoiceStates) {
		if vs := x.(Object); vs["channel_id"] == id {
			err = errors.Join(err, tx.leaveVoice(vs["user_id"].(string)))
		}
	}
	return nil, errors.Join(err, tx.emit("CHANNEL_DELETE", tx.withGuild(c)))
}

func changeThreadCreate(tx *worldTx, ch Change) (Object, error) {
	if _, err := tx.channel(ch.Channel, isTextParent, "text channel"); err != nil {
		return nil, err
	}
	id, err := tx.newID()
	if err != nil {
		return nil, err
	}
	t := merge(newThread(id, "thread-"+id[len(id)-4:], ch.Channel.String()), ch.Fields)
	return t, tx.emit("THREAD_CREATE", tx.withGuild(t))
}

func changeThreadDelete(tx *worldTx, ch Change) (Object, error) {
	t, err := tx.channel(ch.ID, isThread, "thread")
	if err != nil {
		return nil, err
	}
	return nil, tx.emit("THREAD_DELETE", threadDeleteData(tx, t))
}

func threadDeleteData(tx *worldTx, t Object) Object {
	return Object{"id": t["id"], "guild_id": tx.g.String(), "parent_id": t["parent_id"], "type": t["type"]}
}

func changeRoleCreate(tx *worldTx, ch Change) (Object, error) {
	id, err := tx.newID()
	if err != nil {
		return nil, err
	}
	r := merge(newRole(id, "role-"+id[len(id)-4:], len(tx.gs.Roles), 0), ch.Fields)
	return r, tx.emit("GUILD_ROLE_CREATE", Object{"guild_id": tx.g.String(), "role": r})
}

func changeRoleUpdate(tx *worldTx, ch Change) (Object, error) {
	r, err := lookup(tx.gs.Roles, "role", ch.ID)
	if err != nil {
		return nil, err
	}
	r = merge(r, ch.Fields)
	return r, tx.emit("GUILD_ROLE_UPDATE", Object{"guild_id": tx.g.String(), "role": r})
}

func changeRoleDelete(tx *worldTx, ch Change) (Object, error) {
	if _, err := lookup(tx.gs.Roles, "role", ch.ID); err != nil {
		return nil, err
	}
	if ch.ID == tx.g {
		return nil, errors.New("@everyone cannot be deleted")
	}
	id := ch.ID.String()
	var err error
	for _, x := range sortedValues(tx.gs.Members) {
		m := x.(Object)
		roles, _ := m["roles"].([]any)
		if slices.Contains(roles, any(id)) {
			kept := slices.DeleteFunc(slices.Clone(roles), func(r any) bool { return r == id })
			err = errors.Join(err, tx.emit("GUILD_MEMBER_UPDATE", tx.withGuild(merge(m, Object{"roles": kept}))))
		}
	}
	return nil, errors.Join(err, tx.emit("GUILD_ROLE_DELETE", Object{"guild_id": tx.g.String(), "role_id": id}))
}

func changeEmojis(tx *worldTx, ch Change) (Object, error) {
	return tx.changeList(ch, tx.gs.Emojis, "emoji", "emojis", "GUILD_EMOJIS_UPDATE",
		func(id string) Object { return newEmoji(id, "emoji_"+id[len(id)-4:], false) })
}

func changeStickers(tx *worldTx, ch Change) (Object, error) {
	return tx.changeList(ch, tx.gs.Stickers, "sticker", "stickers", "GUILD_STICKERS_UPDATE",
		func(id string) Object { return newSticker(id, "sticker-"+id[len(id)-4:]) })
}

// changeList is emojis-update and stickers-update: change, add and remove,
// then send the whole list.
func (tx *worldTx) changeList(ch Change, cur map[string]Object, what, field, t string, newObj func(string) Object) (Object, error) {
	next := maps.Clone(cur)
	var obj Object
	switch {
	case ch.ID != 0:
		o, err := lookup(cur, what, ch.ID)
		if err != nil {
			return nil, err
		}
		obj = merge(o, ch.Fields)
		next[ch.ID.String()] = obj
	case ch.Fields != nil:
		id, err := tx.newID()
		if err != nil {
			return nil, err
		}
		obj = merge(newObj(id), ch.Fields)
		next[id] = obj
	}
	for _, id := range ch.IDs {
		if _, err := lookup(cur, what, id); err != nil {
			return nil, err
		}
		delete(next, id.String())
	}
	return obj, tx.emit(t, Object{"guild_id": tx.g.String(), field: sortedValues(next)})
}

func changeMemberAdd(tx *worldTx, ch Change) (Object, error) {
	uid := ch.User.String()
	if ch.User == 0 {
		var err error
		if uid, err = tx.newID(); err != nil {
			return nil, err
		}
	} else if tx.gs.Members[uid] != nil {
		return nil, fmt.Errorf("user %s is a member already", uid)
	}
	m := merge(newMember(newUser(uid), []any{}), ch.Fields)
	if err := tx.checkRoles(m); err != nil {
		return nil, err
	}
	return m, tx.emit("GUILD_MEMBER_ADD", tx.withGuild(m))
}

// checkRoles: a member's roles must be roles of the guild, @everyone excluded.
func (tx *worldTx) checkRoles(m Object) error {
	roles, ok := m["roles"].([]any)
	if !ok {
		return errors.New("fields.roles: want an array of role ids")
	}
	for _, r := range roles {
		id, _ := r.(string)
		if tx.gs.Roles[id] == nil || id == tx.g.String() {
			return fmt.Errorf("fields.roles: %v is not a role of the guild (besides @everyone)", r)
		}
	}
	return nil
}

func changeMemberUpdate(tx *worldTx, ch Change) (Object, error) {
	m, err := lookup(tx.gs.Members, "member", ch.User)
	if err != nil {
		return nil, err
	}
	m = merge(m, ch.Fields)
	if err := tx.checkRoles(m); err != nil {
		return nil, err
	}
	return m, tx.emit("GUILD_MEMBER_UPDATE", tx.withGuild(m))
}

func changeMemberRemove(tx *worldTx, ch Change) (Object, error) {
	m, err := lookup(tx.gs.Members, "member", ch.User)
	if err != nil {
		return nil, err
	}
	uid := ch.User.String()
	if tx.gs.VoiceStates[uid] != nil {
		err = tx.leaveVoice(uid)
	}
	return nil, errors.Join(err, tx.emit("GUILD_MEMBER_REMOVE", Object{"guild_id": tx.g.String(), "user": m["user"]}))
}

func changeVoice(tx *worldTx, ch Change) (Object, error) {
	m, err := lookup(tx.gs.Members, "member", ch.User)
	if err != nil {
		return nil, err
	}
	uid := ch.User.String()
	if ch.Channel == 0 {
		if tx.gs.VoiceStates[uid] == nil {
			return nil, fmt.Errorf("user %s is in no voice channel", uid)
		}
		return nil, tx.leaveVoice(uid)
	}
	if _, err := tx.channel(ch.Channel, isVoice, "voice channel"); err != nil {
		return nil, err
	}
	vs := tx.gs.VoiceStates[uid]
	if vs == nil {
		vs = newVoiceState(uid, "")
	}
	vs = merge(vs, ch.Fields)
	vs["channel_id"] = ch.Channel.String()
	d := tx.withGuild(vs)
	d["member"] = m
	return vs, tx.emit("VOICE_STATE_UPDATE", d)
}

// leaveVoice sends the VOICE_STATE_UPDATE of uid leaving voice.
func (tx *worldTx) leaveVoice(uid string) error {
	d := tx.withGuild(tx.gs.VoiceStates[uid])
	d["channel_id"] = nil
	if m := tx.gs.Members[uid]; m != nil {
		d["member"] = m
	}
	return tx.emit("VOICE_STATE_UPDATE", d)
}

func changePresence(tx *worldTx, ch Change) (Object, error) {
	if _, err := lookup(tx.gs.Members, "member", ch.User); err != nil {
		return nil, err
	}
	p := tx.gs.Presences[ch.User.String()]
	if p == nil {
		p = newPresence(ch.User.String(), "online")
	}
	p = merge(p, ch.Fields)
	return p, tx.emit("PRESENCE_UPDATE", tx.withGuild(p))
}

func changeGuildUpdate(tx *worldTx, ch Change) (Object, error) {
	for _, k := range guildArrays {
		if _, ok := ch.Fields[k]; ok {
			return nil, fmt.Errorf("fields may not set %q (it has its own events)", k)
		}
	}
	d := merge(tx.gs.Guild, ch.Fields)
	for _, k := range []string{"joined_at", "large", "member_count", "unavailable"} { // GUILD_CREATE only
		delete(d, k)
	}
	if err := tx.emit("GUILD_UPDATE", d); err != nil {
		return nil, err
	}
	return maps.Clone(tx.gs.Guild), nil
}

func changeGuildLeave(tx *worldTx, _ Change) (Object, error) {
	if err := tx.emit("GUILD_DELETE", Object{"id": tx.g.String()}); err != nil {
		return nil, err
	}
	tx.s.left[tx.g] = true
	delete(tx.s.worldMeta, tx.g)
	return nil, nil
}

func changeGuildUnavailable(tx *worldTx, _ Change) (Object, error) {
	return nil, tx.emit("GUILD_DELETE", Object{"id": tx.g.String(), "unavailable": true})
}

func changeGuildAvailable(tx *worldTx, _ Change) (Object, error) {
	if !tx.gs.Unavailable {
		return nil, errors.New("the guild is available")
	}
	tx.gs.Unavailable = false // so that the GUILD_CREATE below says so
	return nil, tx.emitRaw("GUILD_CREATE", encodeGuildCreate(tx.gs))
}

// messageChannel checks the channel of a message change.
func (tx *worldTx) messageChannel(ch Change) error {
	_, err := tx.channel(ch.Channel, hasMessages, "channel with messages")
	return err
}

func changeMessageCreate(tx *worldTx, ch Change) (Object, error) {
	if err := tx.messageChannel(ch); err != nil {
		return nil, err
	}
	author, member := botUser(), Object(nil)
	if ch.User != 0 {
		m, err := lookup(tx.gs.Members, "member", ch.User)
		if err != nil {
			return nil, err
		}
		author, member = m["user"].(Object), maps.Clone(m)
		delete(member, "user")
	}
	id, err := tx.newID()
	if err != nil {
		return nil, err
	}
	msg := merge(newMessage(id, ch.Channel.String(), author, member, "message "+id[len(id)-4:]), ch.Fields)
	return msg, tx.emit("MESSAGE_CREATE", tx.withGuild(msg))
}

func changeMessageUpdate(tx *worldTx, ch Change) (Object, error) {
	if err := tx.messageChannel(ch); err != nil {
		return nil, err
	}
	if ch.ID == 0 {
		return nil, errors.New("id: required")
	}
	d := merge(Object{"id": ch.ID.String(), "channel_id": ch.Channel.String(),
		"edited_timestamp": snowflakeTime(ch.ID.String())}, ch.Fields)
	return d, tx.emit("MESSAGE_UPDATE", tx.withGuild(d))
}

func changeMessageDelete(tx *worldTx, ch Change) (Object, error) {
	if err := tx.messageChannel(ch); err != nil {
		return nil, err
	}
	if ch.ID == 0 {
		return nil, errors.New("id: required")
	}
	return nil, tx.emit("MESSAGE_DELETE", tx.withGuild(Object{"id": ch.ID.String(), "channel_id": ch.Channel.String()}))
}

func changeMessageDeleteBulk(tx *worldTx, ch Change) (Object, error) {
	if err := tx.messageChannel(ch); err != nil {
		return nil, err
	}
	if len(ch.IDs) == 0 {
		return nil, errors.New("ids: required")
	}
	ids := make([]any, len(ch.IDs))
	for i, id := range ch.IDs {
		ids[i] = id.String()
	}
	return nil, tx.emit("MESSAGE_DELETE_BULK", tx.withGuild(Object{"ids": ids, "channel_id": ch.Channel.String()}))
}
