package fleet

import (
	"encoding/json"
	"time"

	"github.com/disgoorg/snowflake/v2"
)

// The cached objects, as docs/cache.md describes them: each holds the fields
// a bot needs most, decoded from Discord's JSON, and Raw, the whole object as
// the fleet stored it (Discord's shape without guild_id), for the rest.

// Guild is a guild's top-level fields (without its channels, roles, members
// and the other kinds, which are read on their own).
type Guild struct {
	ID          snowflake.ID `json:"id"`
	Name        string       `json:"name"`
	Icon        string       `json:"icon"`
	OwnerID     snowflake.ID `json:"owner_id"`
	MemberCount int          `json:"member_count"`
	Large       bool         `json:"large"`
	JoinedAt    time.Time    `json:"joined_at"`
	// Unavailable: Discord reported an outage of the guild (GUILD_DELETE
	// with unavailable); the rest is as it was before.
	Unavailable bool            `json:"-"`
	Raw         json.RawMessage `json:"-"`
}

// Channel types (https://discord.com/developers/docs/resources/channel).
const (
	ChannelText               = 0
	ChannelVoice              = 2
	ChannelCategory           = 4
	ChannelAnnouncement       = 5
	ChannelAnnouncementThread = 10
	ChannelPublicThread       = 11
	ChannelPrivateThread      = 12
	ChannelStageVoice         = 13
	ChannelDirectory          = 14
	ChannelForum              = 15
	ChannelMedia              = 16
)

// Channel is a guild's channel or thread.
type Channel struct {
	ID                   snowflake.ID `json:"id"`
	Type                 int          `json:"type"`
	Name                 string       `json:"name"`
	Position             int          `json:"position"`
	ParentID             snowflake.ID `json:"parent_id"` // a thread's channel, a channel's category; 0: none
	Topic                string       `json:"topic"`
	NSFW                 bool         `json:"nsfw"`
	PermissionOverwrites []Overwrite  `json:"permission_overwrites"`
	// OwnerID is a thread's creator.
	OwnerID snowflake.ID    `json:"owner_id"`
	Raw     json.RawMessage `json:"-"`
}

// IsThread reports whether c is a thread (its permissions are its parent's).
func (c Channel) IsThread() bool {
	switch c.Type {
	case ChannelAnnouncementThread, ChannelPublicThread, ChannelPrivateThread:
		return true
	}
	return false
}

// Role is a guild's role. The @everyone role's ID is the guild's.
type Role struct {
	ID          snowflake.ID    `json:"id"`
	Name        string          `json:"name"`
	Color       int             `json:"color"`
	Position    int             `json:"position"`
	Permissions Permissions     `json:"permissions"`
	Hoist       bool            `json:"hoist"`
	Managed     bool            `json:"managed"`
	Mentionable bool            `json:"mentionable"`
	Raw         json.RawMessage `json:"-"`
}

// User is the user object embedded in members, presences and messages.
type User struct {
	ID         snowflake.ID `json:"id"`
	Username   string       `json:"username"`
	GlobalName string       `json:"global_name"`
	Bot        bool         `json:"bot"`
}

// GuildMember is a member of a guild.
type GuildMember struct {
	User     User           `json:"user"`
	Nick     string         `json:"nick"`
	Roles    []snowflake.ID `json:"roles"`
	JoinedAt time.Time      `json:"joined_at"`
	Pending  bool           `json:"pending"`
	// CommunicationDisabledUntil is the end of the member's timeout; zero or
	// past: not timed out.
	CommunicationDisabledUntil time.Time       `json:"communication_disabled_until"`
	Raw                        json.RawMessage `json:"-"`
}

// VoiceState is a member's voice connection in the guild.
type VoiceState struct {
	UserID     snowflake.ID    `json:"user_id"`
	ChannelID  snowflake.ID    `json:"channel_id"`
	SessionID  string          `json:"session_id"`
	Deaf       bool            `json:"deaf"`
	Mute       bool            `json:"mute"`
	SelfDeaf   bool            `json:"self_deaf"`
	SelfMute   bool            `json:"self_mute"`
	SelfStream bool            `json:"self_stream"`
	SelfVideo  bool            `json:"self_video"`
	Suppress   bool            `json:"suppress"`
	Raw        json.RawMessage `json:"-"`
}

// Presence is a member's status and activities.
type Presence struct {
	User       User               `json:"user"` // often only its ID
	Status     string             `json:"status"`
	Activities []PresenceActivity `json:"activities"`
	Raw        json.RawMessage    `json:"-"`
}

// PresenceActivity is one of a presence's activities.
type PresenceActivity struct {
	Name  string `json:"name"`
	Type  int    `json:"type"`
	State string `json:"state"`
}

// Emoji is one of a guild's custom emojis.
type Emoji struct {
	ID        snowflake.ID    `json:"id"`
	Name      string          `json:"name"`
	Roles     []snowflake.ID  `json:"roles"`
	Animated  bool            `json:"animated"`
	Available bool            `json:"available"`
	Managed   bool            `json:"managed"`
	Raw       json.RawMessage `json:"-"`
}

// Sticker is one of a guild's stickers.
type Sticker struct {
	ID          snowflake.ID    `json:"id"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	FormatType  int             `json:"format_type"`
	Available   bool            `json:"available"`
	Raw         json.RawMessage `json:"-"`
}

// Message is one of a channel's last messages.
type Message struct {
	ID              snowflake.ID    `json:"id"`
	ChannelID       snowflake.ID    `json:"channel_id"`
	Author          User            `json:"author"`
	Content         string          `json:"content"`
	Timestamp       time.Time       `json:"timestamp"`
	EditedTimestamp time.Time       `json:"edited_timestamp"` // zero: never edited
	Raw             json.RawMessage `json:"-"`
}

// cachedObject is what decodeCached fills: a cached type with its Raw and
// the ID it is stored under.
type cachedObject[T any] interface {
	*T
	setRaw(json.RawMessage)
	cacheID() snowflake.ID
}

func (g *Guild) setRaw(b json.RawMessage)       { g.Raw = b }
func (c *Channel) setRaw(b json.RawMessage)     { c.Raw = b }
func (r *Role) setRaw(b json.RawMessage)        { r.Raw = b }
func (m *GuildMember) setRaw(b json.RawMessage) { m.Raw = b }
func (v *VoiceState) setRaw(b json.RawMessage)  { v.Raw = b }
func (p *Presence) setRaw(b json.RawMessage)    { p.Raw = b }
func (e *Emoji) setRaw(b json.RawMessage)       { e.Raw = b }
func (s *Sticker) setRaw(b json.RawMessage)     { s.Raw = b }
func (m *Message) setRaw(b json.RawMessage)     { m.Raw = b }

func (g *Guild) cacheID() snowflake.ID       { return g.ID }
func (c *Channel) cacheID() snowflake.ID     { return c.ID }
func (r *Role) cacheID() snowflake.ID        { return r.ID }
func (m *GuildMember) cacheID() snowflake.ID { return m.User.ID }
func (v *VoiceState) cacheID() snowflake.ID  { return v.UserID }
func (p *Presence) cacheID() snowflake.ID    { return p.User.ID }
func (e *Emoji) cacheID() snowflake.ID       { return e.ID }
func (s *Sticker) cacheID() snowflake.ID     { return s.ID }
func (m *Message) cacheID() snowflake.ID     { return m.ID }
