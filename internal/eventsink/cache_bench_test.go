package eventsink

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/disgoorg/snowflake/v2"

	"github.com/shardfleet/shardfleet/internal/cache"
	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

const benchGuild = snowflake.ID(1186988032000000000)

// guildCreate is a GUILD_CREATE of benchGuild with members members, 20
// channels and 20 roles.
func guildCreate(members int) json.RawMessage {
	var b strings.Builder
	fmt.Fprintf(&b, `{"id":"%d","name":"bench","member_count":%d,"large":true,"joined_at":"2024-01-01T00:00:00Z","channels":[`, benchGuild, members)
	for i := range 20 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"%d","type":0,"name":"channel-%d","position":%d,"parent_id":null,"topic":null,"nsfw":false,"permission_overwrites":[]}`, 1000+i, i, i)
	}
	b.WriteString(`],"roles":[`)
	for i := range 20 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"%d","name":"role-%d","color":0,"hoist":false,"position":%d,"permissions":"1071698660929","managed":false,"mentionable":false,"flags":0}`, 2000+i, i, i)
	}
	b.WriteString(`],"members":[`)
	for i := range members {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"user":{"id":"%d","username":"user%d","global_name":null,"avatar":null,"discriminator":"0","bot":false},"nick":null,"roles":["2001"],"joined_at":"2024-01-01T00:00:00.000000+00:00","premium_since":null,"deaf":false,"mute":false,"pending":false,"flags":0}`, 100000+i, i)
	}
	b.WriteString(`],"threads":[],"emojis":[],"stickers":[],"voice_states":[],"presences":[],"stage_instances":[]}`)
	return json.RawMessage(b.String())
}

// stateChanges are dispatches that all change a cache keeping every kind.
var stateChanges = []struct{ t, d string }{
	{"PRESENCE_UPDATE", `{"guild_id":"%[1]d","user":{"id":"%[2]d"},"status":"online","activities":[{"name":"game","type":0}],"client_status":{"desktop":"online"}}`},
	{"GUILD_MEMBER_UPDATE", `{"guild_id":"%[1]d","user":{"id":"%[2]d","username":"u","avatar":null},"roles":["2001","2002"],"nick":"n%[2]d","joined_at":"2024-01-01T00:00:00.000000+00:00"}`},
	{"VOICE_STATE_UPDATE", `{"guild_id":"%[1]d","user_id":"%[2]d","channel_id":"1001","session_id":"abc","deaf":false,"mute":false,"self_deaf":false,"self_mute":false,"self_video":false,"suppress":false,"request_to_speak_timestamp":null,"member":{"user":{"id":"%[2]d"},"roles":[]}}`},
	{"CHANNEL_UPDATE", `{"guild_id":"%[1]d","id":"1002","type":0,"name":"renamed-%[2]d","position":2,"parent_id":null,"topic":"t","nsfw":false,"permission_overwrites":[]}`},
	{"MESSAGE_CREATE", ``},
}

// BenchmarkCommitCache: events committed per second, and the redis-server's
// CPU per event, with the state cache off and on, for two mixes on one
// shard: chat (MESSAGE_CREATE of ~850 bytes, which the default cache does
// not keep) and state (every event changes a cache keeping every kind:
// presence, member, voice, channel updates, messages).
//
//	go test -run '^$' -bench CommitCache -benchtime 100000x ./internal/eventsink
func BenchmarkCommitCache(b *testing.B) {
	defaultKinds := cache.Config{Kinds: cache.DefaultKinds(gateway.IntentsNonPrivileged)}
	every := cache.Config{Kinds: defaultKinds.Kinds | cache.Members | cache.Presences | cache.Messages, Messages: 50}
	withOld := every
	withOld.Old = true
	chat := func(seq int) (string, json.RawMessage) {
		return "MESSAGE_CREATE", gatewaytest.MessageCreateData(benchGuild, uint64(seq))
	}
	state := func(seq int) (string, json.RawMessage) {
		c := stateChanges[seq%len(stateChanges)]
		if c.t == "MESSAGE_CREATE" {
			return chat(seq)
		}
		return c.t, json.RawMessage(fmt.Sprintf(c.d, benchGuild, 100000+seq%1000))
	}
	for _, tc := range []struct {
		name string
		cfg  cache.Config
		next func(int) (string, json.RawMessage)
	}{
		{"mix=chat/cache=off", cache.Config{}, chat},
		{"mix=chat/cache=default", defaultKinds, chat},
		{"mix=chat/cache=messages", every, chat},
		{"mix=state/cache=off", cache.Config{}, state},
		{"mix=state/cache=all", every, state},
		{"mix=state/cache=all+old", withOld, state},
	} {
		b.Run(tc.name, func(b *testing.B) {
			create := guildCreate(1000)
			benchWritersOf(b, 1, []Option{WithCache(tc.cfg)}, func(seq int) (string, json.RawMessage) {
				switch seq {
				case 1:
					return "READY", json.RawMessage(fmt.Sprintf(`{"guilds":[{"id":"%d","unavailable":true}]}`, benchGuild))
				case 2:
					return "GUILD_CREATE", create
				}
				return tc.next(seq)
			})
		})
	}
}

// BenchmarkCacheGuildCreate25k: the time to commit (and cache) the
// GUILD_CREATE of a guild with 25,000 members, every kind kept, and the
// Redis memory of its members against the same members as plain JSON.
//
//	go test -run '^$' -bench CacheGuildCreate25k -benchtime 20x ./internal/eventsink
func BenchmarkCacheGuildCreate25k(b *testing.B) {
	const members = 25000
	c := startRedis(b)
	cfg := cache.Config{Kinds: cache.DefaultKinds(gateway.IntentsAll), Messages: 50}
	s := newSink(b, c, WithCache(cfg))
	shard, fence := Shard{ID: 0, Count: 1}, Fence{"bench", 1}
	grant(b, c, shard, fence)
	ctx := context.Background()
	data := guildCreate(members)
	ready := Event{Type: "READY", Seq: 1, SessionID: "S", Data: json.RawMessage(fmt.Sprintf(`{"guilds":[{"id":"%d"}]}`, benchGuild))}
	if _, err := s.Commit(ctx, shard, fence, []Event{ready}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Commit(ctx, shard, fence, []Event{{Type: "GUILD_CREATE", Seq: i + 2, SessionID: "S", Data: data}}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	key := lease.NewKeys(prefix).CacheGuild(shard, benchGuild.String(), ":members")
	if n, err := c.HLen(ctx, key).Result(); err != nil || n != members {
		b.Fatalf("members cached: %d, %v", n, err)
	}
	mem, err := c.MemoryUsage(ctx, key, 0).Result() // SAMPLES 0: every element
	if err != nil {
		b.Fatal(err)
	}
	var plain int64
	for _, v := range c.HVals(ctx, key).Val() {
		plain += int64(len(v))
	}
	b.ReportMetric(float64(mem)/members, "redis-B/member")
	b.ReportMetric(float64(plain)/members, "json-B/member")
}

// BenchmarkChanges: the Go side of a cache change (parse d, build the
// operations), per dispatch.
//
//	go test -run '^$' -bench Changes -benchmem ./internal/eventsink
func BenchmarkChanges(b *testing.B) {
	every := cache.Config{Kinds: cache.DefaultKinds(gateway.IntentsAll) | cache.Messages, Messages: 50}
	msg := gatewaytest.MessageCreateData(benchGuild, 1)
	for _, tc := range []struct {
		name string
		cfg  cache.Config
		t    string
		d    json.RawMessage
	}{
		{"MESSAGE_CREATE/not-kept", cache.Config{Kinds: cache.DefaultKinds(gateway.IntentsNonPrivileged)}, "MESSAGE_CREATE", msg},
		{"MESSAGE_CREATE/kept", every, "MESSAGE_CREATE", msg},
		{"GUILD_MEMBER_UPDATE", every, "GUILD_MEMBER_UPDATE", json.RawMessage(fmt.Sprintf(stateChanges[1].d, benchGuild, 7))},
		{"GUILD_CREATE/1000-members", every, "GUILD_CREATE", guildCreate(1000)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.d)))
			for b.Loop() {
				tc.cfg.Changes(tc.t, tc.d)
			}
		})
	}
}
