package fleet

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/disgoorg/snowflake/v2"

	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/internal/redistest"
)

// benchRoles is a large guild's role count (Discord allows 250).
const benchRoles = 250

// BenchmarkCacheReads: what one read costs a bot on loopback Redis, for a
// guild of benchRoles roles and 500 channels, the member holding 10 roles and
// the channel 20 role overwrites.
func BenchmarkCacheReads(b *testing.B) {
	r := redistest.Start(b)
	rc := r.Client(b)
	ctx := context.Background()
	keys := keyspace.NewKeys("")
	c := NewClient(rc, "")
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	must(rc.HSet(ctx, keys.Layout(), "version", 1, "data", `{"count":4}`).Err())
	must(rc.Set(ctx, keys.CacheKinds(), allKinds, 0).Err())
	s := ShardKey{ID: 3, Count: 4}
	g := cacheGuild.String()
	must(rc.HSet(ctx, keys.CacheGuild(s, g, keyspace.CacheSuffixGuild), "guild", guildJSON, "unavailable", "0").Err())
	must(rc.SAdd(ctx, keys.CacheShardGuilds(s), g).Err())
	roles := []any{g, everyoneJSON}
	var memberRoles, overwrites string
	for i := 1; i < benchRoles; i++ {
		id := fmt.Sprint(1000 + i)
		roles = append(roles, id, fmt.Sprintf(`{"id":"%s","name":"role %d","color":0,"hoist":false,"position":%d,"permissions":"%d","managed":false,"mentionable":false}`, id, i, i, 1<<(i%41)))
		if i <= 10 {
			memberRoles += `,"` + id + `"`
		}
		if i <= 20 {
			overwrites += fmt.Sprintf(`,{"id":"%s","type":0,"allow":"%d","deny":"%d"}`, id, 1<<(i%41), 1<<((i+7)%41))
		}
	}
	must(rc.HSet(ctx, keys.CacheGuild(s, g, keyspace.CacheSuffixRoles), roles...).Err())
	channels := []any{}
	for i := range 500 {
		id := fmt.Sprint(5000 + i)
		channels = append(channels, id, fmt.Sprintf(`{"id":"%s","type":0,"name":"channel %d","position":%d,"parent_id":null,"permission_overwrites":[{"id":"%s","type":0,"allow":"0","deny":"2048"}%s]}`,
			id, i, i, g, overwrites))
	}
	must(rc.HSet(ctx, keys.CacheGuild(s, g, keyspace.CacheSuffixChannels), channels...).Err())
	must(rc.HSet(ctx, keys.CacheGuild(s, g, keyspace.CacheSuffixMembers), cacheUser.String(),
		`{"user":{"id":"53908232506183680","username":"mason"},"roles":[`+memberRoles[1:]+`],"joined_at":"2015-04-26T06:26:56.936000+00:00"}`).Err())

	b.Run("Member", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Member(ctx, cacheGuild, cacheUser); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Permissions", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Permissions(ctx, cacheGuild, 5000, cacheUser); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GuildChannels500", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.GuildChannels(ctx, cacheGuild); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ComputePermissions", func(b *testing.B) {
		rs, err := c.Roles(ctx, cacheGuild)
		must(err)
		m, err := c.Member(ctx, cacheGuild, cacheUser)
		must(err)
		ch, err := c.Channel(ctx, cacheGuild, 5000)
		must(err)
		now := time.Now()
		for b.Loop() {
			ComputePermissions(snowflake.ID(1), rs[0], rs, m, &ch, now)
		}
	})
}
