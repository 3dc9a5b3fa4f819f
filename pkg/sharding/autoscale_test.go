package sharding

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// Every shard of count 2 holds too many guilds, and so does every shard of
// count 4: each is split twice (s + j*c per shard, so the second split is
// right too) into 8 shards of count 8. Every guild reaches exactly one shard,
// the handler sees it there, and ShardByGuildID agrees.
func TestAutoScalingSplitsTwice(t *testing.T) {
	fake := newFake(t, gatewaytest.WithGuilds(40), gatewaytest.WithMaxGuildsPerShard(5))
	log := &eventLog{}
	m := newTestManager(t, fake, log.handle, WithShardCount(2), WithAutoScaling(true))
	if err := m.OpenAll(testCtx(t)); err != nil {
		t.Fatalf("OpenAll: %v", err)
	}
	want := make([]ShardKey, 8)
	for i := range want {
		want[i] = ShardKey{ID: i, Count: 8}
	}
	if got := m.ShardKeys(); !slices.Equal(got, want) {
		t.Fatalf("layout = %v, want %v", got, want)
	}
	if m.ShardCount() != 8 {
		t.Fatalf("ShardCount = %d, want 8", m.ShardCount())
	}
	checkRouting(t, m, fake, log, true)
	if v := fake.Stats().IdentifyViolations; v != 0 {
		t.Fatalf("%d identify violations", v)
	}
}

// Only shard 0 of count 2 is too big (21 guilds: 11 and 10, at most 10 each):
// a mixed layout 0/4, 1/2, 2/4, and ShardByGuildID routes across it.
func TestAutoScalingMixedCounts(t *testing.T) {
	fake := newFake(t, gatewaytest.WithGuilds(21), gatewaytest.WithMaxGuildsPerShard(10))
	log := &eventLog{}
	m := newTestManager(t, fake, log.handle, WithShardCount(2), WithAutoScaling(true))
	if err := m.OpenAll(testCtx(t)); err != nil {
		t.Fatalf("OpenAll: %v", err)
	}
	keys := m.ShardKeys()
	if len(keys) != 3 {
		t.Fatalf("layout = %v, want one shard of count 2 and two of count 4", keys)
	}
	counts := map[int]int{}
	for _, k := range keys {
		counts[k.Count]++
	}
	if counts[2] != 1 || counts[4] != 2 {
		t.Fatalf("layout = %v, want one shard of count 2 and two of count 4", keys)
	}
	checkRouting(t, m, fake, log, true)
}

// Without AutoScaling, 4011 is a fatal failure of the shard, reported.
func TestShardingRequiredWithoutAutoScaling(t *testing.T) {
	fake := newFake(t, gatewaytest.WithGuilds(10), gatewaytest.WithMaxGuildsPerShard(4))
	m := newTestManager(t, fake, nil, WithShardCount(1))
	err := m.OpenAll(testCtx(t))
	var se *ShardError
	if !errors.As(err, &se) || gateway.CloseStatus(err) != gateway.CloseShardingRequired || !gateway.IsFatal(err) {
		t.Fatalf("OpenAll = %v, want a ShardError with 4011", err)
	}
	if len(m.Shards()) != 0 {
		t.Fatalf("shards = %v", m.ShardKeys())
	}
}

// A 4011 after READY (the close handler's path) splits the shard too, in the
// background.
func TestAutoScalingAfterReady(t *testing.T) {
	fake := newFake(t, gatewaytest.WithGuilds(6))
	log := &eventLog{}
	m := newTestManager(t, fake, log.handle, WithShardCount(1), WithAutoScaling(true), WithShardSplitCount(3))
	ctx := testCtx(t)
	if err := m.OpenAll(ctx); err != nil {
		t.Fatal(err)
	}
	if n := fake.CloseConnections(0, gateway.CloseShardingRequired, "sharding required"); n != 1 {
		t.Fatalf("closed %d connections", n)
	}
	want := []ShardKey{{ID: 0, Count: 3}, {ID: 1, Count: 3}, {ID: 2, Count: 3}}
	eventually(t, 10*time.Second, "the split shards to be ready", func() bool {
		if !slices.Equal(m.ShardKeys(), want) {
			return false
		}
		for _, gw := range m.Shards() {
			if gw.Status() != gateway.StatusReady {
				return false
			}
		}
		return true
	})
	// The fake keeps the session it closed with 4011 as resumable (it buffers
	// events for it), so a guild may reach 2 sessions there; the handler must
	// still get each event once, on the shard that owns it.
	checkRouting(t, m, fake, log, false)
}

// checkRouting: every guild of the fake reaches exactly one live session, the
// handler gets it on the shard that owns it by its own count, and
// ShardByGuildID returns that shard.
func checkRouting(t *testing.T, m FleetShardManager, fake *gatewaytest.Server, log *eventLog, exact bool) {
	t.Helper()
	for _, ev := range dispatchEvery(t, fake, log, exact) {
		key := ShardKey{ID: ev.shardID, Count: ev.shardCount}
		if !key.Owns(ev.guild) {
			t.Errorf("guild %d delivered on %v, which does not own it", ev.guild, key)
		}
		gw := m.ShardByGuildID(ev.guild)
		if gw == nil || gw.ShardID() != ev.shardID || gw.ShardCount() != ev.shardCount {
			t.Errorf("ShardByGuildID(%d) = %v, want shard %v", ev.guild, gw, key)
		}
	}
}
