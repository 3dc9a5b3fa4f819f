package gatewaytest

import (
	"strconv"

	"github.com/disgoorg/snowflake/v2"
)

// The world's objects, shaped as Discord sends them (without guild_id, which
// dispatches add). Numbers are float64 so that they equal decoded JSON.

const worldTime = "2024-01-01T00:00:00.000000+00:00"

func newChannel(id string, typ int, name string, position int, parent any) Object {
	c := Object{"id": id, "type": float64(typ), "name": name, "position": float64(position), "parent_id": parent,
		"permission_overwrites": []any{}, "flags": 0.0}
	switch typ {
	case chanCategory:
		c["parent_id"] = nil
	case chanVoice, chanStage:
		c["bitrate"], c["user_limit"], c["rtc_region"] = 64000.0, 0.0, nil
		c["nsfw"], c["rate_limit_per_user"] = false, 0.0
	default:
		c["topic"], c["nsfw"], c["rate_limit_per_user"], c["last_message_id"] = nil, false, 0.0, nil
	}
	return c
}

func newThread(id, name, parent string) Object {
	return Object{"id": id, "type": float64(chanPublicThread), "name": name, "parent_id": parent,
		"owner_id": botUserID.String(), "last_message_id": nil, "rate_limit_per_user": 0.0, "message_count": 0.0,
		"member_count": 1.0, "total_message_sent": 0.0, "flags": 0.0,
		"thread_metadata": map[string]any{"archived": false, "auto_archive_duration": 1440.0,
			"archive_timestamp": worldTime, "locked": false, "create_timestamp": worldTime}}
}

func newRole(id, name string, position int, permissions uint64) Object {
	return Object{"id": id, "name": name, "color": 0.0, "hoist": false, "icon": nil, "unicode_emoji": nil,
		"position": float64(position), "permissions": strconv.FormatUint(permissions, 10), "managed": false,
		"mentionable": false, "flags": 0.0}
}

func newEmoji(id, name string, animated bool) Object {
	return Object{"id": id, "name": name, "roles": []any{}, "require_colons": true, "managed": false,
		"animated": animated, "available": true}
}

func newSticker(id, name string) Object {
	return Object{"id": id, "name": name, "tags": "fake", "type": 2.0, "format_type": 1.0,
		"description": "a fake sticker", "available": true}
}

func newUser(id string) Object {
	n := id[max(0, len(id)-5):]
	return Object{"id": id, "username": "user" + n, "global_name": "User " + n, "discriminator": "0",
		"avatar": nil, "bot": false, "public_flags": 0.0}
}

func newMember(user Object, roles []any) Object {
	return Object{"user": user, "nick": nil, "avatar": nil, "banner": nil, "roles": roles, "joined_at": worldTime,
		"premium_since": nil, "deaf": false, "mute": false, "pending": false, "flags": 0.0,
		"communication_disabled_until": nil}
}

func newVoiceState(userID, channelID string) Object {
	return Object{"user_id": userID, "channel_id": channelID, "session_id": "voice-" + userID, "deaf": false,
		"mute": false, "self_deaf": false, "self_mute": false, "self_video": false, "suppress": false,
		"request_to_speak_timestamp": nil}
}

func newPresence(userID, status string) Object {
	return Object{"user": map[string]any{"id": userID}, "status": status, "activities": []any{},
		"client_status": map[string]any{"desktop": status}}
}

func newMessage(id, channelID string, author, member Object, content string) Object {
	m := Object{"id": id, "channel_id": channelID, "type": 0.0, "content": content, "author": author,
		"timestamp": snowflakeTime(id), "edited_timestamp": nil, "tts": false, "mention_everyone": false,
		"mentions": []any{}, "mention_roles": []any{}, "attachments": []any{}, "embeds": []any{},
		"components": []any{}, "pinned": false, "flags": 0.0}
	if member != nil {
		m["member"] = member
	}
	return m
}

// snowflakeTime is a snowflake's timestamp in Discord's format.
func snowflakeTime(id string) string {
	sf, _ := snowflake.Parse(id)
	return sf.Time().UTC().Format("2006-01-02T15:04:05.000000+00:00")
}

// botUser is the bot's user object (READY's user).
func botUser() Object {
	return Object{"id": botUserID.String(), "username": "fakebot", "global_name": nil, "discriminator": "0",
		"avatar": nil, "bot": true, "public_flags": 0.0}
}
