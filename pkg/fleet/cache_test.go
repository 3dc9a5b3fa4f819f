package fleet

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/disgoorg/snowflake/v2"
	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/internal/redistest"
)

// allKinds is what a fleet with every kind of the cache records.
const allKinds = "guilds,channels,roles,emojis,voice_states,members,presences,messages"

// cacheFixture is a fleet's Redis with a layout of base count 2 whose shard
// 1 was split in 2 (shards 0/2, 1/4 and 3/4), and a writer of cache entries
// that builds its keys with keyspace, as the workers do.
type cacheFixture struct {
	t    *testing.T
	rc   *redis.Client
	keys keyspace.Keys
	c    *Client
}

func newCacheFixture(t *testing.T, kinds string) *cacheFixture {
	r := redistest.Start(t)
	f := &cacheFixture{t: t, rc: r.Client(t), keys: keyspace.NewKeys("app"), c: NewClient(r.Client(t), "app")}
	f.do(f.rc.HSet(context.Background(), f.keys.Layout(), "version", 2,
		"data", `{"count":2,"splits":[{"key":{"id":1,"count":2},"factor":2}]}`))
	if kinds != "" {
		f.do(f.rc.Set(context.Background(), f.keys.CacheKinds(), kinds, 0))
	}
	return f
}

func (f *cacheFixture) do(cmd redis.Cmder) {
	f.t.Helper()
	if err := cmd.Err(); err != nil {
		f.t.Fatal(err)
	}
}

// guild caches guild g on shard s: its hash and its place in s's set.
func (f *cacheFixture) guild(s ShardKey, g snowflake.ID, obj string, unavailable bool) {
	ctx := context.Background()
	u := "0"
	if unavailable {
		u = "1"
	}
	f.do(f.rc.HSet(ctx, f.keys.CacheGuild(s, g.String(), keyspace.CacheSuffixGuild), "guild", obj, "unavailable", u, "shard", s.String()))
	f.do(f.rc.SAdd(ctx, f.keys.CacheShardGuilds(s), g.String()))
}

// hash stores objects (id, JSON, id, JSON...) in guild g's hash kind.
func (f *cacheFixture) hash(s ShardKey, g snowflake.ID, suffix string, idsAndObjects ...string) {
	f.do(f.rc.HSet(context.Background(), f.keys.CacheGuild(s, g.String(), suffix), idsAndObjects))
}

// The guild of the cache tests: (guild >> 22) % 2 == 1, then % 4 == 3, so
// it is on shard 3/4 after the split.
const (
	cacheGuild   snowflake.ID = 3<<22 | 7
	cacheOwner   snowflake.ID = 80351110224678912
	cacheUser    snowflake.ID = 53908232506183680
	cacheModRole snowflake.ID = 41771983423143936
	cacheText    snowflake.ID = 41771983423143937
	cacheThread  snowflake.ID = 41771983444115456
	cacheCat     snowflake.ID = 399942533297160192
)

var shard34 = ShardKey{ID: 3, Count: 4}

const (
	guildJSON = `{"id":"12582919","name":"Fleet HQ","icon":null,"owner_id":"80351110224678912","member_count":2,"large":false,` +
		`"joined_at":"2026-01-02T03:04:05.678000+00:00","features":["COMMUNITY"],"afk_timeout":300}`
	everyoneJSON = `{"id":"12582919","name":"@everyone","color":0,"hoist":false,"position":0,"permissions":"1071698660929","managed":false,"mentionable":false,"flags":0}`
	modJSON      = `{"id":"41771983423143936","name":"mod","color":3447003,"hoist":true,"position":1,"permissions":"8192","managed":false,"mentionable":true,"flags":0}`
	textJSON     = `{"id":"41771983423143937","type":0,"name":"general","position":6,"parent_id":"399942533297160192","topic":"24/7 chat",` +
		`"nsfw":false,"rate_limit_per_user":2,"last_message_id":"155117677105512449",` +
		`"permission_overwrites":[{"id":"12582919","type":0,"allow":"0","deny":"2048"},{"id":"41771983423143936","type":0,"allow":"2048","deny":"0"}]}`
	threadJSON = `{"id":"41771983444115456","type":11,"name":"a thread","parent_id":"41771983423143937","owner_id":"53908232506183680",` +
		`"message_count":1,"member_count":1,"thread_metadata":{"archived":false,"auto_archive_duration":1440,"locked":false}}`
	categoryJSON = `{"id":"399942533297160192","type":4,"name":"Text","position":0,"parent_id":null,"permission_overwrites":[]}`
	memberJSON   = `{"user":{"id":"53908232506183680","username":"mason","global_name":"Mason","avatar":null},"nick":"NOT API SUPPORT",` +
		`"roles":["41771983423143936"],"joined_at":"2015-04-26T06:26:56.936000+00:00","deaf":false,"mute":false,"pending":false,` +
		`"communication_disabled_until":null,"flags":0}`
	voiceJSON = `{"channel_id":"157733188964188161","user_id":"53908232506183680","session_id":"90326bd25d71d39b9ef95b299e3872ff",` +
		`"deaf":false,"mute":false,"self_deaf":false,"self_mute":true,"self_stream":false,"self_video":false,"suppress":false,"request_to_speak_timestamp":null}`
	presenceJSON = `{"user":{"id":"53908232506183680"},"status":"online","activities":[{"name":"Rocket League","type":0,"state":"In a match"}],` +
		`"client_status":{"desktop":"online"}}`
	emojiJSON   = `{"id":"41771983429993937","name":"LUL","roles":["41771983423143936"],"require_colons":true,"managed":false,"animated":true,"available":true}`
	stickerJSON = `{"id":"749054660769218631","name":"Wave","description":"Wumpus waves hello","tags":"wave","type":2,"format_type":3,"available":true}`
)

func msgJSON(id, content string) string {
	return `{"id":"` + id + `","channel_id":"41771983423143937","author":{"id":"53908232506183680","username":"mason"},` +
		`"content":"` + content + `","timestamp":"2026-12-06T10:00:00.000000+00:00","edited_timestamp":null,"tts":false}`
}

// fill caches the test guild on shard 3/4 with one object of every kind.
func (f *cacheFixture) fill() {
	f.guild(shard34, cacheGuild, guildJSON, false)
	f.hash(shard34, cacheGuild, keyspace.CacheSuffixRoles, cacheGuild.String(), everyoneJSON, cacheModRole.String(), modJSON)
	f.hash(shard34, cacheGuild, keyspace.CacheSuffixChannels, cacheText.String(), textJSON, cacheThread.String(), threadJSON, cacheCat.String(), categoryJSON)
	f.hash(shard34, cacheGuild, keyspace.CacheSuffixMembers, cacheUser.String(), memberJSON)
	f.hash(shard34, cacheGuild, keyspace.CacheSuffixVoice, cacheUser.String(), voiceJSON)
	f.hash(shard34, cacheGuild, keyspace.CacheSuffixPresences, cacheUser.String(), presenceJSON)
	f.hash(shard34, cacheGuild, keyspace.CacheSuffixEmojis, "41771983429993937", emojiJSON)
	f.hash(shard34, cacheGuild, keyspace.CacheSuffixStickers, "749054660769218631", stickerJSON)
	// Newest at the head, as the workers LPUSH.
	f.do(f.rc.LPush(context.Background(), f.keys.CacheGuild(shard34, cacheGuild.String(), keyspace.CacheSuffixMessages+cacheText.String()),
		msgJSON("1", "first"), msgJSON("2", "second"), msgJSON("3", "third")))
}

// TestCacheReadsTyped: every kind, written into the layout as the workers
// write it, reads back typed, with the whole stored object in Raw.
func TestCacheReadsTyped(t *testing.T) {
	f := newCacheFixture(t, allKinds)
	f.fill()
	ctx := context.Background()
	c := f.c

	g, err := c.Guild(ctx, cacheGuild)
	if err != nil || g.ID != cacheGuild || g.Name != "Fleet HQ" || g.OwnerID != cacheOwner || g.MemberCount != 2 ||
		g.Unavailable || g.JoinedAt.Year() != 2026 || string(g.Raw) != guildJSON {
		t.Fatalf("Guild = %+v, %v", g, err)
	}
	ch, err := c.Channel(ctx, cacheGuild, cacheText)
	want := []Overwrite{{ID: cacheGuild, Type: OverwriteRole, Deny: PermSendMessages}, {ID: cacheModRole, Type: OverwriteRole, Allow: PermSendMessages}}
	if err != nil || ch.Name != "general" || ch.Type != ChannelText || ch.Position != 6 || ch.ParentID != cacheCat || ch.Topic != "24/7 chat" ||
		len(ch.PermissionOverwrites) != 2 || ch.PermissionOverwrites[0] != want[0] || ch.PermissionOverwrites[1] != want[1] || string(ch.Raw) != textJSON {
		t.Fatalf("Channel = %+v, %v", ch, err)
	}
	chs, err := c.GuildChannels(ctx, cacheGuild)
	if err != nil || len(chs) != 3 || chs[0].ID != cacheText || chs[1].ID != cacheThread || !chs[1].IsThread() || chs[1].OwnerID != cacheUser ||
		chs[2].ID != cacheCat || chs[2].ParentID != 0 {
		t.Fatalf("GuildChannels = %+v, %v; want text, thread, category (by ID)", chs, err)
	}
	roles, err := c.Roles(ctx, cacheGuild)
	if err != nil || len(roles) != 2 || roles[0].ID != cacheGuild || roles[0].Permissions != 1071698660929 ||
		roles[1].Name != "mod" || roles[1].Permissions != PermManageMessages || !roles[1].Hoist || roles[1].Color != 3447003 {
		t.Fatalf("Roles = %+v, %v", roles, err)
	}
	r, err := c.Role(ctx, cacheGuild, cacheModRole)
	if err != nil || r.Position != 1 || string(r.Raw) != modJSON {
		t.Fatalf("Role = %+v, %v", r, err)
	}
	m, err := c.Member(ctx, cacheGuild, cacheUser)
	if err != nil || m.User.ID != cacheUser || m.User.Username != "mason" || m.Nick != "NOT API SUPPORT" || len(m.Roles) != 1 ||
		m.Roles[0] != cacheModRole || !m.CommunicationDisabledUntil.IsZero() || m.JoinedAt.Year() != 2015 || string(m.Raw) != memberJSON {
		t.Fatalf("Member = %+v, %v", m, err)
	}
	v, err := c.VoiceState(ctx, cacheGuild, cacheUser)
	if err != nil || v.UserID != cacheUser || v.ChannelID != 157733188964188161 || !v.SelfMute || v.SessionID == "" {
		t.Fatalf("VoiceState = %+v, %v", v, err)
	}
	p, err := c.Presence(ctx, cacheGuild, cacheUser)
	if err != nil || p.User.ID != cacheUser || p.Status != "online" || len(p.Activities) != 1 || p.Activities[0].State != "In a match" {
		t.Fatalf("Presence = %+v, %v", p, err)
	}
	e, err := c.Emojis(ctx, cacheGuild)
	if err != nil || len(e) != 1 || e[0].Name != "LUL" || !e[0].Animated || len(e[0].Roles) != 1 {
		t.Fatalf("Emojis = %+v, %v", e, err)
	}
	st, err := c.Stickers(ctx, cacheGuild)
	if err != nil || len(st) != 1 || st[0].Name != "Wave" || st[0].FormatType != 3 {
		t.Fatalf("Stickers = %+v, %v", st, err)
	}
	msgs, err := c.Messages(ctx, cacheGuild, cacheText)
	if err != nil || len(msgs) != 3 || msgs[0].Content != "first" || msgs[2].Content != "third" || msgs[2].ID != 3 ||
		msgs[0].Author.ID != cacheUser || msgs[0].Timestamp.IsZero() || !msgs[0].EditedTimestamp.IsZero() {
		t.Fatalf("Messages = %+v, %v; want first..third, oldest first", msgs, err)
	}
	if msgs, err := c.Messages(ctx, cacheGuild, cacheThread); err != nil || len(msgs) != 0 {
		t.Fatalf("Messages of a channel without any = %+v, %v; want none", msgs, err)
	}

	f.guild(shard34, cacheGuild, guildJSON, true)
	if g, err := c.Guild(ctx, cacheGuild); err != nil || !g.Unavailable || g.Name != "Fleet HQ" {
		t.Fatalf("unavailable Guild = %+v, %v; want it marked and kept", g, err)
	}
}

// TestCacheRoutesThroughTheLayout: a guild is read under the shard that
// serves it in the layout, after a split as before one. (Today every shard's
// keys share the fleet's prefix, so the shard's set of cached guilds is the
// key that tells the shards apart.)
func TestCacheRoutesThroughTheLayout(t *testing.T) {
	f := newCacheFixture(t, allKinds)
	ctx := context.Background()
	// Cached under shard 1/2, which was split: its guilds are now 1/4's or 3/4's.
	f.guild(ShardKey{ID: 1, Count: 2}, cacheGuild, guildJSON, false)
	if roles, err := f.c.Roles(ctx, cacheGuild); !errors.Is(err, ErrNotCached) {
		t.Fatalf("Roles of a guild cached only under its shard before the split = %v, %v; want ErrNotCached", roles, err)
	}
	f.do(f.rc.SAdd(ctx, f.keys.CacheShardGuilds(shard34), cacheGuild.String()))
	if roles, err := f.c.Roles(ctx, cacheGuild); err != nil || len(roles) != 0 {
		t.Fatalf("Roles of a guild of 3/4 without roles = %v, %v; want none", roles, err)
	}
	// A guild of the unsplit shard 0/2.
	g0 := snowflake.ID(2<<22 | 9)
	f.guild(ShardKey{ID: 0, Count: 2}, g0, `{"id":"8388617","name":"zero"}`, false)
	if ch, err := f.c.GuildChannels(ctx, g0); err != nil || len(ch) != 0 {
		t.Fatalf("GuildChannels of a guild of 0/2 = %v, %v; want none", ch, err)
	}
	if g, err := f.c.Guild(ctx, g0); err != nil || g.Name != "zero" {
		t.Fatalf("Guild of 0/2 = %+v, %v", g, err)
	}
}

// TestCacheErrors: a missing object is ErrNotCached, a kind the fleet does
// not keep is ErrKindNotCached naming CACHE, a corrupt object is
// keyspace.ErrCorrupt, and a Redis error is none of them.
func TestCacheErrors(t *testing.T) {
	f := newCacheFixture(t, "guilds, channels,roles")
	f.fill()
	ctx := context.Background()
	c := f.c
	notCached := []struct {
		name string
		read func() error
	}{
		{"role", func() error { _, err := c.Role(ctx, cacheGuild, 1); return err }},
		{"guild", func() error { _, err := c.Guild(ctx, cacheGuild+1); return err }},
		{"channel", func() error { _, err := c.Channel(ctx, cacheGuild, 1); return err }},
		{"channels of a guild not cached", func() error { _, err := c.GuildChannels(ctx, cacheGuild+4<<22); return err }},
	}
	for _, tc := range notCached {
		if err := tc.read(); !errors.Is(err, ErrNotCached) || errors.Is(err, ErrKindNotCached) {
			t.Errorf("%s: %v, want ErrNotCached", tc.name, err)
		}
	}
	for name, read := range map[string]func() error{
		"members":      func() error { _, err := c.Member(ctx, cacheGuild, cacheUser); return err },
		"voice_states": func() error { _, err := c.VoiceState(ctx, cacheGuild, cacheUser); return err },
		"presences":    func() error { _, err := c.Presence(ctx, cacheGuild, cacheUser); return err },
		"emojis":       func() error { _, err := c.Stickers(ctx, cacheGuild); return err },
		"messages":     func() error { _, err := c.Messages(ctx, cacheGuild, cacheText); return err },
	} {
		err := read()
		if !errors.Is(err, ErrKindNotCached) || errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "CACHE") ||
			!strings.Contains(err.Error(), "add "+name) {
			t.Errorf("read of %s, not cached: %v; want ErrKindNotCached naming CACHE and %s", name, err, name)
		}
	}

	f.hash(shard34, cacheGuild, keyspace.CacheSuffixChannels, "5", `{"id":"5","type":"text"}`, "6", `[]`)
	for _, id := range []snowflake.ID{5, 6} {
		if _, err := c.Channel(ctx, cacheGuild, id); !errors.Is(err, keyspace.ErrCorrupt) {
			t.Errorf("corrupt channel %d: %v, want keyspace.ErrCorrupt", id, err)
		}
	}
	if _, err := c.GuildChannels(ctx, cacheGuild); !errors.Is(err, keyspace.ErrCorrupt) {
		t.Errorf("channels with a corrupt one: %v, want keyspace.ErrCorrupt", err)
	}
	f.do(f.rc.Set(ctx, f.keys.CacheGuild(shard34, cacheGuild.String(), keyspace.CacheSuffixRoles), "not a hash", 0))
	if _, err := c.Role(ctx, cacheGuild, cacheModRole); err == nil || errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Errorf("role of a key of the wrong type: %v, want the Redis error", err)
	}

	f.do(f.rc.Del(ctx, f.keys.CacheKinds()))
	if _, err := c.Guild(ctx, cacheGuild); !errors.Is(err, ErrKindNotCached) || !strings.Contains(err.Error(), "CACHE") {
		t.Errorf("no kinds recorded: %v, want ErrKindNotCached naming CACHE", err)
	}
	f.do(f.rc.Del(ctx, f.keys.Layout()))
	if _, err := c.Guild(ctx, cacheGuild); !errors.Is(err, ErrNotCached) {
		t.Errorf("no layout: %v, want ErrNotCached", err)
	}
}

// TestCachePermissions: Permissions reads the guild's owner, roles, member
// and channel from the cache and computes as ComputePermissions does; a
// thread takes its parent's overwrites.
func TestCachePermissions(t *testing.T) {
	f := newCacheFixture(t, allKinds)
	f.fill()
	ctx := context.Background()
	c := f.c
	everyone := Permissions(1071698660929)
	for _, tc := range []struct {
		name          string
		channel, user snowflake.ID // user 0: cacheUser
		member        string       // the user's member JSON; "": memberJSON
		want          Permissions
	}{
		{name: "guild level", want: everyone | PermManageMessages},
		{name: "the mod role's overwrite allows what @everyone's denies", channel: cacheText, want: everyone | PermManageMessages},
		{name: "a thread has its parent's overwrites", channel: cacheThread, want: everyone | PermManageMessages},
		{name: "the owner", channel: cacheText, user: cacheOwner, want: PermAll,
			member: `{"user":{"id":"80351110224678912","username":"owner"},"roles":[]}`},
		{name: "without the mod role, @everyone's deny of SEND_MESSAGES holds", channel: cacheText,
			member: `{"user":{"id":"53908232506183680"},"roles":[]}`, want: everyone &^ (PermSendMessages | sendImplies)},
		{name: "timed out", channel: cacheThread, want: PermViewChannel | PermReadMessageHistory,
			member: `{"user":{"id":"53908232506183680"},"roles":["41771983423143936"],"communication_disabled_until":"` +
				time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano) + `"}`},
	} {
		user := cmp.Or(tc.user, cacheUser)
		f.hash(shard34, cacheGuild, keyspace.CacheSuffixMembers, user.String(), cmp.Or(tc.member, memberJSON))
		got, err := c.Permissions(ctx, cacheGuild, tc.channel, user)
		if err != nil || got != tc.want {
			t.Errorf("%s: Permissions = %#x, %v; want %#x", tc.name, got, err, tc.want)
		}
	}
	if _, err := c.Permissions(ctx, cacheGuild, cacheText, 12345); !errors.Is(err, ErrNotCached) {
		t.Errorf("Permissions of a member not cached: %v, want ErrNotCached", err)
	}
	f.hash(shard34, cacheGuild, keyspace.CacheSuffixChannels, "77", `{"id":"77","type":11,"parent_id":"78"}`)
	if _, err := c.Permissions(ctx, cacheGuild, 77, cacheUser); !errors.Is(err, ErrNotCached) {
		t.Errorf("Permissions in a thread whose parent is not cached: %v, want ErrNotCached", err)
	}
	f.do(f.rc.HDel(ctx, f.keys.CacheGuild(shard34, cacheGuild.String(), keyspace.CacheSuffixRoles), cacheGuild.String()))
	if _, err := c.Permissions(ctx, cacheGuild, 0, cacheUser); !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "@everyone") {
		t.Errorf("Permissions without the @everyone role: %v, want ErrNotCached naming it", err)
	}
	f.do(f.rc.Set(ctx, f.keys.CacheKinds(), "guilds,roles,members", 0))
	if _, err := c.Permissions(ctx, cacheGuild, cacheText, cacheUser); !errors.Is(err, ErrKindNotCached) {
		t.Errorf("Permissions in a channel without the channels kind: %v, want ErrKindNotCached", err)
	}
}

// FuzzDecodeCached: a stored object, written by whoever has access to Redis,
// decodes into every type or is keyspace.ErrCorrupt, never a panic; a decoded
// object keeps the stored bytes whole in Raw.
func FuzzDecodeCached(f *testing.F) {
	for _, s := range []string{guildJSON, everyoneJSON, textJSON, threadJSON, memberJSON, voiceJSON, presenceJSON, emojiJSON, stickerJSON,
		msgJSON("1", "x"), `{"permissions":"99999999999999999999"}`, `{"roles":[1]}`, `{"communication_disabled_until":"yesterday"}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode[Guild](t, b)
		checkDecode[Channel](t, b)
		checkDecode[Role](t, b)
		checkDecode[GuildMember](t, b)
		checkDecode[VoiceState](t, b)
		checkDecode[Presence](t, b)
		checkDecode[Emoji](t, b)
		checkDecode[Sticker](t, b)
		checkDecode[Message](t, b)
	})
}

func checkDecode[T any, P cachedObject[T]](t *testing.T, b []byte) {
	v, err := decodeCached[T, P](b)
	if err != nil {
		if !errors.Is(err, keyspace.ErrCorrupt) {
			t.Fatalf("decode %T: %v is not keyspace.ErrCorrupt", v, err)
		}
		return
	}
	if raw := reflect.ValueOf(v).FieldByName("Raw").Bytes(); !json.Valid(b) || string(raw) != string(b) {
		t.Fatalf("decode %T: Raw %q, want the stored %q", v, raw, b)
	}
}
