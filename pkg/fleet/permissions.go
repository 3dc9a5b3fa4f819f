package fleet

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/disgoorg/snowflake/v2"
)

// Permissions is a Discord permission bit set. Discord sends it as a decimal
// string (API v8+); it is decoded from a string or a bare number.
type Permissions uint64

// Discord's permission bits (https://discord.com/developers/docs/topics/permissions).
const (
	PermCreateInstantInvite Permissions = 1 << iota
	PermKickMembers
	PermBanMembers
	PermAdministrator
	PermManageChannels
	PermManageGuild
	PermAddReactions
	PermViewAuditLog
	PermPrioritySpeaker
	PermStream
	PermViewChannel
	PermSendMessages
	PermSendTTSMessages
	PermManageMessages
	PermEmbedLinks
	PermAttachFiles
	PermReadMessageHistory
	PermMentionEveryone
	PermUseExternalEmojis
	PermViewGuildInsights
	PermConnect
	PermSpeak
	PermMuteMembers
	PermDeafenMembers
	PermMoveMembers
	PermUseVAD
	PermChangeNickname
	PermManageNicknames
	PermManageRoles
	PermManageWebhooks
	PermManageGuildExpressions
	PermUseApplicationCommands
	PermRequestToSpeak
	PermManageEvents
	PermManageThreads
	PermCreatePublicThreads
	PermCreatePrivateThreads
	PermUseExternalStickers
	PermSendMessagesInThreads
	PermUseEmbeddedActivities
	PermModerateMembers
)

// PermAll is what the guild's owner and an ADMINISTRATOR have: every bit,
// including the ones Discord adds after this list was written.
const PermAll = ^Permissions(0)

// Has reports whether p holds every bit of want.
func (p Permissions) Has(want Permissions) bool { return p&want == want }

// UnmarshalJSON reads Discord's decimal string (or a bare number); null
// leaves p as it is, as encoding/json does.
func (p *Permissions) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if u, err := strconv.Unquote(s); err == nil {
		s = u
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("permissions %.30q: not a decimal integer", b)
	}
	*p = Permissions(v)
	return nil
}

// MarshalJSON writes the decimal string Discord uses.
func (p Permissions) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(strconv.FormatUint(uint64(p), 10))), nil
}

// Overwrite types.
const (
	OverwriteRole   = 0
	OverwriteMember = 1
)

// Overwrite is one of a channel's permission_overwrites.
type Overwrite struct {
	ID    snowflake.ID `json:"id"`
	Type  int          `json:"type"` // OverwriteRole or OverwriteMember
	Allow Permissions  `json:"allow"`
	Deny  Permissions  `json:"deny"`
}

// timeoutKeeps is what a timed-out member keeps (the rest is denied).
const timeoutKeeps = PermViewChannel | PermReadMessageHistory

// sendImplies is what a member who may not send messages in a channel loses
// with it.
const sendImplies = PermMentionEveryone | PermSendTTSMessages | PermAttachFiles | PermEmbedLinks

// ComputePermissions is Discord's permission computation for member of the
// guild whose owner is owner, whose @everyone role is everyone and whose
// roles are roles (member.Roles are looked up in it; unknown IDs are
// ignored). channel is nil for the guild-level permissions; for a thread,
// Permissions passes the thread with its parent's overwrites, which are the
// ones that apply. now decides whether the member is timed out.
//
// The rules, in Discord's order: the owner has PermAll; the base is
// @everyone's permissions OR those of the member's roles; ADMINISTRATOR
// gives PermAll; then the channel's overwrites: @everyone's deny then allow,
// the deny of all the member's roles combined then their allow combined, then
// the member's own deny then allow. A member timed out
// (communication_disabled_until after now) keeps only VIEW_CHANNEL and
// READ_MESSAGE_HISTORY. In a channel, without VIEW_CHANNEL nothing is left,
// and without the permission to send messages (SEND_MESSAGES,
// SEND_MESSAGES_IN_THREADS in a thread) MENTION_EVERYONE, SEND_TTS_MESSAGES,
// ATTACH_FILES and EMBED_LINKS go too.
func ComputePermissions(owner snowflake.ID, everyone Role, roles []Role, member GuildMember, channel *Channel, now time.Time) Permissions {
	if member.User.ID == owner {
		return PermAll
	}
	p := everyone.Permissions
	for _, r := range roles {
		if r.ID != everyone.ID && slices.Contains(member.Roles, r.ID) {
			p |= r.Permissions
		}
	}
	if p.Has(PermAdministrator) {
		return PermAll
	}
	if channel != nil {
		p = applyOverwrites(p, everyone.ID, member, channel.PermissionOverwrites)
	}
	if member.CommunicationDisabledUntil.After(now) {
		p &= timeoutKeeps
	}
	if channel == nil {
		return p
	}
	return implicit(p, channel.Type)
}

// applyOverwrites applies a channel's overwrites to the base permissions p:
// @everyone's (the role whose ID is the guild's), the member's roles' combined,
// then the member's.
func applyOverwrites(p Permissions, everyone snowflake.ID, member GuildMember, ows []Overwrite) Permissions {
	var roleAllow, roleDeny Permissions
	var own *Overwrite
	for i, o := range ows {
		switch {
		case o.Type == OverwriteRole && o.ID == everyone:
			p = p&^o.Deny | o.Allow
		case o.Type == OverwriteRole && slices.Contains(member.Roles, o.ID):
			roleAllow |= o.Allow
			roleDeny |= o.Deny
		case o.Type == OverwriteMember && o.ID == member.User.ID:
			own = &ows[i]
		}
	}
	p = p&^roleDeny | roleAllow
	if own != nil {
		p = p&^own.Deny | own.Allow
	}
	return p
}

// implicit applies Discord's implicit denials in a channel of type kind.
func implicit(p Permissions, kind int) Permissions {
	if !p.Has(PermViewChannel) {
		return 0
	}
	send, ok := sendPermission(kind)
	if ok && !p.Has(send) {
		p &^= sendImplies
	}
	return p
}

// sendPermission is the permission to send messages in a channel of type
// kind, and whether messages can be sent there at all (not in a category or a
// directory).
func sendPermission(kind int) (Permissions, bool) {
	switch kind {
	case ChannelAnnouncementThread, ChannelPublicThread, ChannelPrivateThread:
		return PermSendMessagesInThreads, true
	case ChannelCategory, ChannelDirectory:
		return 0, false
	}
	return PermSendMessages, true
}
