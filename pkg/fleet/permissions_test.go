package fleet

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/disgoorg/snowflake/v2"
)

// The guild of the permission tests.
const (
	permGuild snowflake.ID = 100 // and its @everyone role
	permOwner snowflake.ID = 1
	permUser  snowflake.ID = 2
	roleHelp  snowflake.ID = 3
	roleMuted snowflake.ID = 4
	roleAdmin snowflake.ID = 5
	roleOther snowflake.ID = 6 // the member does not have it
)

const everyoneBase = PermViewChannel | PermSendMessages | PermReadMessageHistory | PermEmbedLinks | PermAttachFiles | PermAddReactions

func permRoles(everyone Permissions) []Role {
	return []Role{
		{ID: permGuild, Name: "@everyone", Permissions: everyone},
		{ID: roleHelp, Permissions: PermManageMessages},
		{ID: roleMuted},
		{ID: roleAdmin, Permissions: PermAdministrator},
		{ID: roleOther, Permissions: PermBanMembers},
	}
}

func role(id snowflake.ID, allow, deny Permissions) Overwrite {
	return Overwrite{ID: id, Type: OverwriteRole, Allow: allow, Deny: deny}
}

func member(id snowflake.ID, allow, deny Permissions) Overwrite {
	return Overwrite{ID: id, Type: OverwriteMember, Allow: allow, Deny: deny}
}

// TestComputePermissions covers each of Discord's rules, in its order.
func TestComputePermissions(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	later, earlier := now.Add(time.Hour), now.Add(-time.Hour)
	text := func(ows ...Overwrite) *Channel { return &Channel{Type: ChannelText, PermissionOverwrites: ows} }
	for _, tc := range []struct {
		name     string
		user     snowflake.ID
		roles    []snowflake.ID
		everyone Permissions // 0: everyoneBase
		timeout  time.Time
		channel  *Channel
		want     Permissions
	}{
		{name: "guild level: @everyone or the member's roles", roles: []snowflake.ID{roleHelp},
			want: everyoneBase | PermManageMessages},
		{name: "unknown and absent roles add nothing", roles: []snowflake.ID{999},
			want: everyoneBase},
		{name: "the owner has everything, whatever the overwrites", user: permOwner,
			channel: text(member(permOwner, 0, PermAll), role(permGuild, 0, PermAll)), want: PermAll},
		{name: "ADMINISTRATOR from a role has everything, overwrites and timeouts aside", roles: []snowflake.ID{roleAdmin},
			timeout: later, channel: text(role(permGuild, 0, PermViewChannel), member(permUser, 0, PermAll)), want: PermAll},
		{name: "ADMINISTRATOR from @everyone", everyone: PermAdministrator, want: PermAll},
		{name: "no overwrites: the base, in a channel", roles: []snowflake.ID{roleHelp}, channel: text(),
			want: everyoneBase | PermManageMessages},
		{name: "@everyone's overwrite: deny then allow", channel: text(role(permGuild, PermMentionEveryone, PermAddReactions)),
			want: everyoneBase&^PermAddReactions | PermMentionEveryone},
		{name: "a role's overwrite comes after @everyone's, whatever the list's order", roles: []snowflake.ID{roleHelp},
			channel: text(role(roleHelp, PermAddReactions, 0), role(permGuild, 0, PermAddReactions)),
			want:    everyoneBase | PermManageMessages},
		{name: "roles' overwrites: all denies, then all allows", roles: []snowflake.ID{roleHelp, roleMuted},
			channel: text(role(roleMuted, 0, PermAddReactions|PermReadMessageHistory), role(roleHelp, PermAddReactions, 0)),
			want:    everyoneBase&^PermReadMessageHistory | PermManageMessages},
		{name: "the overwrite of a role the member lacks is ignored",
			channel: text(role(roleOther, 0, PermAddReactions)), want: everyoneBase},
		{name: "the member's overwrite comes last: its deny beats a role's allow", roles: []snowflake.ID{roleHelp},
			channel: text(member(permUser, 0, PermAddReactions), role(roleHelp, PermAddReactions, 0)),
			want:    everyoneBase&^PermAddReactions | PermManageMessages},
		{name: "the member's allow beats a role's deny", roles: []snowflake.ID{roleMuted},
			channel: text(role(roleMuted, 0, PermSendMessages), member(permUser, PermSendMessages, 0)),
			want:    everyoneBase},
		{name: "another member's overwrite, and a member overwrite with a role's ID, are ignored", roles: []snowflake.ID{roleHelp},
			channel: text(member(permOwner, 0, PermAll), member(roleHelp, 0, PermAll), role(permUser, 0, PermAll)),
			want:    everyoneBase | PermManageMessages},
		{name: "without VIEW_CHANNEL in a channel nothing is left", roles: []snowflake.ID{roleHelp},
			channel: text(role(permGuild, 0, PermViewChannel)), want: 0},
		{name: "a role's overwrite gives VIEW_CHANNEL back", everyone: everyoneBase &^ PermViewChannel, roles: []snowflake.ID{roleHelp},
			channel: text(role(roleHelp, PermViewChannel, 0)), want: everyoneBase | PermManageMessages},
		{name: "without VIEW_CHANNEL at the guild level, but no channel: kept", everyone: PermSendMessages,
			want: PermSendMessages},
		{name: "without SEND_MESSAGES in a text channel: no mention everyone, TTS, files, embeds",
			everyone: everyoneBase | PermMentionEveryone | PermSendTTSMessages, channel: text(role(permGuild, 0, PermSendMessages)),
			want: PermViewChannel | PermReadMessageHistory | PermAddReactions},
		{name: "the send rule holds in voice channels' text chat", everyone: everyoneBase &^ PermSendMessages,
			channel: &Channel{Type: ChannelVoice}, want: PermViewChannel | PermReadMessageHistory | PermAddReactions},
		{name: "no send rule in a category", everyone: everyoneBase &^ PermSendMessages,
			channel: &Channel{Type: ChannelCategory}, want: everyoneBase &^ PermSendMessages},
		{name: "in a thread, sending is SEND_MESSAGES_IN_THREADS", everyone: everyoneBase &^ PermSendMessages,
			channel: &Channel{Type: ChannelPublicThread}, want: PermViewChannel | PermReadMessageHistory | PermAddReactions},
		{name: "in a thread, SEND_MESSAGES_IN_THREADS keeps files and embeds", everyone: everyoneBase | PermSendMessagesInThreads,
			channel: &Channel{Type: ChannelPrivateThread, PermissionOverwrites: []Overwrite{role(permGuild, 0, PermSendMessages)}},
			want:    everyoneBase&^PermSendMessages | PermSendMessagesInThreads},
		{name: "timed out: only VIEW_CHANNEL and READ_MESSAGE_HISTORY", roles: []snowflake.ID{roleHelp}, timeout: later,
			channel: text(role(permGuild, PermMentionEveryone, 0)), want: PermViewChannel | PermReadMessageHistory},
		{name: "timed out, at the guild level too", roles: []snowflake.ID{roleHelp}, timeout: later,
			want: PermViewChannel | PermReadMessageHistory},
		{name: "timed out without VIEW_CHANNEL: nothing", timeout: later,
			channel: text(member(permUser, 0, PermViewChannel)), want: 0},
		{name: "a timeout that ended changes nothing", roles: []snowflake.ID{roleHelp}, timeout: earlier, channel: text(),
			want: everyoneBase | PermManageMessages},
		{name: "a timeout ending now has ended", timeout: now, channel: text(), want: everyoneBase},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user := tc.user
			if user == 0 {
				user = permUser
			}
			everyone := tc.everyone
			if everyone == 0 {
				everyone = everyoneBase
			}
			roles := permRoles(everyone)
			m := GuildMember{User: User{ID: user}, Roles: tc.roles, CommunicationDisabledUntil: tc.timeout}
			got := ComputePermissions(permOwner, roles[0], roles, m, tc.channel, now)
			if got != tc.want {
				t.Errorf("ComputePermissions = %#x, want %#x (missing %#x, extra %#x)", got, tc.want, tc.want&^got, got&^tc.want)
			}
		})
	}
}

// TestPermissionsJSON: Discord's decimal strings (and bare numbers, and
// null) decode; anything else is an error.
func TestPermissionsJSON(t *testing.T) {
	for in, want := range map[string]Permissions{
		`"1071698660929"`:        1071698660929,
		`"18446744073709551615"`: PermAll,
		`8`:                      PermAdministrator,
		`"0"`:                    0,
		`null`:                   0,
	} {
		var p Permissions
		if err := json.Unmarshal([]byte(in), &p); err != nil || p != want {
			t.Errorf("unmarshal %s = %d, %v; want %d", in, p, err, want)
		}
	}
	for _, in := range []string{`"-1"`, `"18446744073709551616"`, `"0x10"`, `""`, `true`, `"1 "`} {
		var p Permissions
		if err := json.Unmarshal([]byte(in), &p); err == nil {
			t.Errorf("unmarshal %s = %d, want an error", in, p)
		}
	}
	b, err := json.Marshal(PermViewChannel | PermAdministrator)
	if err != nil || string(b) != `"1032"` {
		t.Errorf("marshal = %s, %v; want \"1032\"", b, err)
	}
}

// TestPermissionBits: the iota list matches Discord's documented values.
func TestPermissionBits(t *testing.T) {
	for got, want := range map[Permissions]uint64{
		PermAdministrator:          0x8,
		PermViewChannel:            0x400,
		PermSendMessages:           0x800,
		PermSendTTSMessages:        0x1000,
		PermEmbedLinks:             0x4000,
		PermAttachFiles:            0x8000,
		PermReadMessageHistory:     0x10000,
		PermMentionEveryone:        0x20000,
		PermManageGuildExpressions: 0x40000000,
		PermSendMessagesInThreads:  0x4000000000,
		PermModerateMembers:        0x10000000000,
	} {
		if uint64(got) != want {
			t.Errorf("permission %#x, want %#x", got, want)
		}
	}
}
