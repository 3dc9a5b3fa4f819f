package gatewaytest

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/disgoorg/snowflake/v2"
)

// Fixed identities of the fake bot.
const (
	botUserID       = snowflake.ID(1100000000000000001)
	applicationID   = botUserID
	fakeTrace       = `["[\"gateway-prd-fake-1\",{\"micros\":0}]"]`
	gatewayPath     = "/gateway"
	resumeGatewayPx = "/resume-gateway"
)

var (
	frameHeartbeatACK     = []byte(`{"op":11,"d":null,"s":null,"t":null}`)
	frameHeartbeatRequest = []byte(`{"op":1,"d":null,"s":null,"t":null}`)
	frameReconnect        = []byte(`{"op":7,"d":null,"s":null,"t":null}`)
	frameInvalidFalse     = []byte(`{"op":9,"d":false,"s":null,"t":null}`)
	frameInvalidTrue      = []byte(`{"op":9,"d":true,"s":null,"t":null}`)
)

func helloFrame(interval time.Duration) []byte {
	b := []byte(`{"op":10,"d":{"heartbeat_interval":`)
	b = strconv.AppendInt(b, interval.Milliseconds(), 10)
	b = append(b, `,"_trace":`...)
	b = append(b, fakeTrace...)
	return append(b, `},"s":null,"t":null}`...)
}

func invalidSessionFrame(resumable bool) []byte {
	if resumable {
		return frameInvalidTrue
	}
	return frameInvalidFalse
}

// dispatchHead builds a dispatch's envelope up to its data,
// {"op":0,"s":seq,"t":typ,"d": ; the frame is head + data + "}". typJSON is
// already a JSON string literal.
func dispatchHead(seq int, typJSON []byte) []byte {
	b := make([]byte, 0, len(typJSON)+32)
	b = append(b, `{"op":0,"s":`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, `,"t":`...)
	b = append(b, typJSON...)
	return append(b, `,"d":`...)
}

func jsonString(s string) []byte {
	b, _ := json.Marshal(s) // marshalling a string cannot fail
	return b
}

func appendID(b []byte, id snowflake.ID) []byte {
	b = append(b, '"')
	b = strconv.AppendUint(b, uint64(id), 10)
	return append(b, '"')
}

// readyData is READY's d for a session.
func readyData(ss *session, guilds []snowflake.ID, resumeURL string, shardSent bool) []byte {
	b := []byte(`{"v":`)
	b = strconv.AppendInt(b, int64(ss.version), 10)
	b = append(b, `,"user":{"id":`...)
	b = appendID(b, botUserID)
	b = append(b, `,"username":"fakebot","global_name":null,"discriminator":"0","avatar":null,"bot":true,"verified":true,"mfa_enabled":false,"flags":0},"guilds":[`...)
	for i, g := range guilds {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendID(b, g)
		b = append(b, `,"unavailable":true}`...)
	}
	b = append(b, `],"session_id":`...)
	b = append(b, jsonString(ss.id)...)
	b = append(b, `,"session_type":"normal","resume_gateway_url":`...)
	b = append(b, jsonString(resumeURL)...)
	if shardSent {
		b = append(b, `,"shard":[`...)
		b = strconv.AppendInt(b, int64(ss.shardID), 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(ss.shardCount), 10)
		b = append(b, ']')
	}
	b = append(b, `,"application":{"id":`...)
	b = appendID(b, applicationID)
	b = append(b, `,"flags":0},"private_channels":[],"relationships":[],"presences":[],"guild_join_requests":[],"geo_ordered_rtc_regions":["fake"],"_trace":`...)
	b = append(b, fakeTrace...)
	return append(b, '}')
}

// guildCreateData is a plausible GUILD_CREATE d for guild number i.
func guildCreateData(i int, g snowflake.ID) []byte {
	b := []byte(`{"id":`)
	b = appendID(b, g)
	b = append(b, `,"name":"fake guild `...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `","icon":null,"description":null,"splash":null,"owner_id":`...)
	b = appendID(b, botUserID+1)
	b = append(b, `,"region":"deprecated","afk_channel_id":null,"afk_timeout":300,"verification_level":0,"default_message_notifications":0,"explicit_content_filter":0,"mfa_level":0,"premium_tier":0,"premium_subscription_count":0,"preferred_locale":"en-US","nsfw_level":0,"features":[],"emojis":[],"stickers":[],"unavailable":false,"large":false,"member_count":2,"joined_at":"2024-01-01T00:00:00.000000+00:00","roles":[{"id":`...)
	b = appendID(b, g)
	b = append(b, `,"name":"@everyone","color":0,"hoist":false,"position":0,"permissions":"1071698660929","managed":false,"mentionable":false,"flags":0}],"channels":[{"id":`...)
	b = appendID(b, g+1)
	b = append(b, `,"type":0,"name":"general","position":0,"parent_id":null,"topic":null,"nsfw":false,"rate_limit_per_user":0,"last_message_id":null,"permission_overwrites":[]}],"threads":[],"members":[],"voice_states":[],"presences":[],"stage_instances":[],"guild_scheduled_events":[],"soundboard_sounds":[]}`...)
	return b
}

// loadWords make message contents vary the way chat does, so compressed
// sizes are realistic rather than a few bytes of back-references.
var loadWords = []string{"the", "shard", "gateway", "resume", "lease", "guild", "message", "hello",
	"anyone", "online", "tonight", "raid", "at", "nine", "lol", "bot", "broke", "again", "please",
	"fix", "queue", "music", "skip", "ping", "pong", "server", "role", "channel", "vote", "poll",
	"meme", "image", "link", "thanks", "welcome", "new", "member", "rules", "read", "pinned"}

// MessageCreateData returns a realistic MESSAGE_CREATE d (about 850 bytes)
// for a message numbered n in guild g (g 0: a DM, without guild_id and member).
// The steady load of EventsPerSecond uses it; benchmarks may too.
func MessageCreateData(g snowflake.ID, n uint64) json.RawMessage {
	h := n*0x9E3779B97F4A7C15 + uint64(g)
	msgID := snowflake.ID(uint64(guildEpochMs+1<<20+n%(1<<30))<<22 | h>>52)
	author := botUserID + 2 + snowflake.ID(h%5000)
	b := make([]byte, 0, 1024)
	b = append(b, `{"type":0,"tts":false,"timestamp":"2026-01-01T12:`...)
	b = appendTwo(b, int(n/60%60))
	b = append(b, ':')
	b = appendTwo(b, int(n%60))
	b = append(b, `.`...)
	b = strconv.AppendUint(b, 100000+h%900000, 10)
	b = append(b, `+00:00","pinned":false,"nonce":"`...)
	b = strconv.AppendUint(b, h>>1, 10)
	b = append(b, `","mentions":[],"mention_roles":[],"mention_everyone":false,`...)
	if g != 0 {
		b = append(b, `"member":{"roles":[],"premium_since":null,"pending":false,"nick":null,"mute":false,"joined_at":"2024-01-01T00:00:00.000000+00:00","flags":0,"deaf":false,"communication_disabled_until":null,"banner":null,"avatar":null},`...)
	}
	b = append(b, `"id":`...)
	b = appendID(b, msgID)
	b = append(b, `,"flags":0,"embeds":[],"edited_timestamp":null,"content":"`...)
	for i, x := 0, h; i < 14; i, x = i+1, x*6364136223846793005+1442695040888963407 {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, loadWords[(x>>33)%uint64(len(loadWords))]...)
	}
	b = append(b, `","components":[],"channel_id":`...)
	b = appendID(b, g+1+snowflake.ID(h%7))
	b = append(b, `,"author":{"username":"user`...)
	b = strconv.AppendUint(b, uint64(author)%100000, 10)
	b = append(b, `","public_flags":0,"primary_guild":null,"id":`...)
	b = appendID(b, author)
	b = append(b, `,"global_name":"User `...)
	b = strconv.AppendUint(b, uint64(author)%100000, 10)
	b = append(b, `","discriminator":"0","collectibles":null,"clan":null,"avatar_decoration_data":null,"avatar":"`...)
	b = strconv.AppendUint(b, h, 16)
	b = append(b, `"},"attachments":[]`...)
	if g != 0 {
		b = append(b, `,"guild_id":`...)
		b = appendID(b, g)
	}
	return append(b, '}')
}

func appendTwo(b []byte, v int) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }
