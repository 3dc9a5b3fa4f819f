package integration

import (
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/disgoorg/snowflake/v2"

	"github.com/shardfleet/shardfleet/internal/cache"
	"github.com/shardfleet/shardfleet/internal/lease"
	gt "github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// TestCacheEqualsTheWorld drives every change kind of the fake's world
// through its controls, with worker processes keeping every kind, and
// compares `worker cache dump` with GET /_fake/state for every guild after
// each step: the changes, a guild unavailable and back, the bot leaving a
// guild while its shard is down (the next session's READY reconciles it
// away), and a 4011 split of a shard.
func TestCacheEqualsTheWorld(t *testing.T) {
	const shards = 2
	// A dropped session ends at the fake after 2 s, so that a stopped shard's
	// next session is a new one (IDENTIFY, READY).
	c := newChaosWorld(t, shards, 0, "-resume-timeout", "2s")
	kinds, err := cache.ParseKinds(cache.KindNames())
	if err != nil {
		t.Fatal(err)
	}
	w1 := c.startChaosWorker()
	c.waitHealed("cold start")
	n := c.waitCacheMatchesFake("after the GUILD_CREATEs", kinds)
	t.Logf("cold start: %d guilds equal", n)

	g := guildOf(t, c.fake, 0, shards)
	change := func(kind gt.ChangeKind, ch gt.Change) gt.Object {
		ch.Guild = g
		return c.fake.change(t, kind, ch)
	}
	idOf := func(o gt.Object, path ...string) snowflake.ID {
		for _, p := range path[:len(path)-1] {
			o = o[p].(map[string]any)
		}
		id, err := snowflake.Parse(o[path[len(path)-1]].(string))
		if err != nil {
			t.Fatalf("%v: %v", o, err)
		}
		return id
	}
	text := idOf(change(gt.ChannelCreate, gt.Change{Fields: gt.Object{"name": "e2e", "type": 0}}), "id")
	voice := idOf(change(gt.ChannelCreate, gt.Change{Fields: gt.Object{"name": "e2e-voice", "type": 2}}), "id")
	change(gt.ChannelUpdate, gt.Change{ID: text, Fields: gt.Object{"topic": "renamed"}})
	thread := idOf(change(gt.ThreadCreate, gt.Change{Channel: text, Fields: gt.Object{"name": "t"}}), "id")
	change(gt.ThreadUpdate, gt.Change{ID: thread, Fields: gt.Object{"name": "t2"}})
	gone := idOf(change(gt.ThreadCreate, gt.Change{Channel: text}), "id")
	change(gt.ThreadDelete, gt.Change{ID: gone})
	role := idOf(change(gt.RoleCreate, gt.Change{Fields: gt.Object{"name": "mods"}}), "id")
	change(gt.RoleUpdate, gt.Change{ID: role, Fields: gt.Object{"name": "admins"}})
	change(gt.EmojisUpdate, gt.Change{Fields: gt.Object{"name": "new_emoji"}})
	change(gt.StickersUpdate, gt.Change{Fields: gt.Object{"name": "new_sticker"}})
	user := idOf(change(gt.MemberAdd, gt.Change{}), "user", "id")
	change(gt.MemberUpdate, gt.Change{User: user, Fields: gt.Object{"nick": "n", "roles": []string{role.String()}}})
	change(gt.Voice, gt.Change{User: user, Channel: voice})
	change(gt.Presence, gt.Change{User: user, Fields: gt.Object{"status": "idle"}})
	var msgs []snowflake.ID
	for i := range cacheMessages + 2 { // more than either side keeps
		msgs = append(msgs, idOf(change(gt.MessageCreate, gt.Change{Channel: text, Fields: gt.Object{"content": "m" + strconv.Itoa(i)}}), "id"))
	}
	change(gt.MessageCreate, gt.Change{Channel: thread, User: user})
	change(gt.MessageUpdate, gt.Change{Channel: text, ID: msgs[len(msgs)-1], Fields: gt.Object{"content": "edited"}})
	change(gt.MessageDelete, gt.Change{Channel: text, ID: msgs[len(msgs)-2]})
	change(gt.MessageDeleteBulk, gt.Change{Channel: text, IDs: msgs[len(msgs)-3 : len(msgs)-2]})
	change(gt.GuildUpdate, gt.Change{Fields: gt.Object{"name": "renamed guild"}})
	n = c.waitCacheMatchesFake("after a create and an update of every kind", kinds)
	t.Logf("creates and updates: %d guilds equal", n)

	change(gt.RoleDelete, gt.Change{ID: role})                // GUILD_MEMBER_UPDATE of its member first
	change(gt.MemberRemove, gt.Change{User: user})            // VOICE_STATE_UPDATE (leave) first
	change(gt.ChannelDelete, gt.Change{ID: text})             // THREAD_DELETE of its thread first; its messages go
	change(gt.Voice, gt.Change{User: someVoiceUser(t, c, g)}) // a generated member leaves voice
	n = c.waitCacheMatchesFake("after the deletes", kinds)
	t.Logf("deletes: %d guilds equal", n)

	c.fake.change(t, gt.GuildUnavailable, gt.Change{Guild: g})
	n = c.waitCacheMatchesFake("during an outage", kinds)
	c.fake.change(t, gt.GuildAvailable, gt.Change{Guild: g})
	c.waitCacheMatchesFake("after the outage", kinds)
	t.Logf("outage and back: %d guilds equal", n)

	// The bot leaves a guild of shard 1, and another guild changes, while
	// no session serves the shards: the next sessions' READY and
	// GUILD_CREATEs must bring the cache back to the truth.
	left := guildOf(t, c.fake, 1, shards)
	c.signalWorker(w1, syscall.SIGKILL)
	_ = c.workers[w1].wait(t, 10*time.Second)
	c.forget(w1)
	poll(t, "the killed worker's sessions to end at the fake", 10*time.Second, func() bool {
		return len(c.liveSessions(-1)) == 0 && !c.resumable()
	})
	c.fake.change(t, gt.GuildLeave, gt.Change{Guild: left})
	change(gt.GuildUpdate, gt.Change{Fields: gt.Object{"name": "changed while down"}})
	c.startChaosWorker()
	c.waitHealed("a new worker after the kill")
	n = c.waitCacheMatchesFake("after a guild was left while its shard was down", kinds)
	t.Logf("left while down: %d guilds equal (guild %s gone)", n, left)

	// 4011: shard 0 grows past the fake's cap; its next IDENTIFY is closed
	// 4011 and the fleet splits it. The halves' sessions re-cache their guilds.
	k := lease.ShardKey{ID: 0, Count: shards}
	c.growShard(k, chaosMaxGuildsPerShard+1)
	fatal := c.fake.stats(t).FatalCloses
	c.controlHit(fmt.Sprintf("/_fake/invalidate?resumable=false&shard=%d", k.ID))
	poll(t, "shard 0's IDENTIFY to be closed 4011", 20*time.Second, func() bool { return c.fake.stats(t).FatalCloses > fatal })
	poll(t, "the split layout", 20*time.Second, func() bool { return len(c.layoutKeys()) > shards })
	c.waitHealed("after the 4011 split")
	change(gt.ChannelCreate, gt.Change{Fields: gt.Object{"name": "after-split"}})
	n = c.waitCacheMatchesFake("after the 4011 split", kinds)
	t.Logf("4011 split into %v: %d guilds equal", c.layoutKeys(), n)
}

// someVoiceUser is a member of guild g in a voice channel, per the truth.
func someVoiceUser(t *testing.T, c *chaosWorld, g snowflake.ID) snowflake.ID {
	t.Helper()
	var st gt.State
	c.fake.get(t, "/_fake/state", &st)
	for uid := range st.Guilds[g.String()].VoiceStates {
		id, err := snowflake.Parse(uid)
		if err == nil {
			return id
		}
	}
	t.Fatalf("guild %s: nobody in voice (the world flags give every guild voice states)", g)
	return 0
}

// resumable reports whether the fake still holds a session some client
// could RESUME (disconnected, not ended).
func (c *chaosWorld) resumable() bool {
	for _, s := range c.fake.sessions(c.t) {
		if !s.Ended {
			return true
		}
	}
	return false
}
