package gateway

import (
	"context"

	"github.com/disgoorg/snowflake/v2"
)

// PresenceUpdate is op 3's payload, and IDENTIFY's presence.
type PresenceUpdate struct {
	// Since is when the client went idle, in Unix ms, or nil.
	Since      *int64     `json:"since"`
	Activities []Activity `json:"activities"`
	// Status is "online", "dnd", "idle", "invisible" or "offline".
	Status string `json:"status"`
	AFK    bool   `json:"afk"`
}

// Activity is one entry of PresenceUpdate.Activities.
type Activity struct {
	Name  string `json:"name"`
	Type  int    `json:"type"`
	URL   string `json:"url,omitempty"`
	State string `json:"state,omitempty"`
}

// VoiceStateUpdate is op 4's payload. A nil ChannelID leaves the voice channel.
type VoiceStateUpdate struct {
	GuildID   snowflake.ID  `json:"guild_id"`
	ChannelID *snowflake.ID `json:"channel_id"`
	SelfMute  bool          `json:"self_mute"`
	SelfDeaf  bool          `json:"self_deaf"`
}

// RequestGuildMembers is op 8's payload. It needs Query or UserIDs.
type RequestGuildMembers struct {
	GuildID   snowflake.ID   `json:"guild_id"`
	Query     *string        `json:"query,omitempty"`
	Limit     int            `json:"limit"`
	Presences bool           `json:"presences,omitempty"`
	UserIDs   []snowflake.ID `json:"user_ids,omitempty"`
	Nonce     string         `json:"nonce,omitempty"`
}

// UpdatePresence sends op 3 on g.
func UpdatePresence(ctx context.Context, g Gateway, presence PresenceUpdate) error {
	if presence.Activities == nil {
		presence.Activities = []Activity{}
	}
	return g.Send(ctx, OpPresenceUpdate, presence)
}

// UpdateVoiceState sends op 4 on g. The shard must be the one of the guild.
func UpdateVoiceState(ctx context.Context, g Gateway, update VoiceStateUpdate) error {
	return g.Send(ctx, OpVoiceStateUpdate, update)
}

// RequestMembers sends op 8 on g. The shard must be the one of the guild.
func RequestMembers(ctx context.Context, g Gateway, request RequestGuildMembers) error {
	if request.Query == nil && len(request.UserIDs) == 0 {
		return errRequestMembersNeedsFilter
	}
	if len(request.Nonce) > 32 {
		return errNonceTooLong
	}
	return g.Send(ctx, OpRequestGuildMembers, request)
}
