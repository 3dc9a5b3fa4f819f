package sharding

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// ShardCount 0: the count and max_concurrency come from /gateway/bot; Open
// returns with every shard READY, paced by the limiter only (no violation at
// the fake), buckets in order; every event reaches the handler with its shard.
func TestOpenDiscoversAndPaces(t *testing.T) {
	const shards, mc = 8, 2
	fake := newFake(t, gatewaytest.WithShards(shards), gatewaytest.WithMaxConcurrency(mc), gatewaytest.WithGuilds(40))
	log := &eventLog{}
	m := newTestManager(t, fake, log.handle)
	if err := m.OpenAll(testCtx(t)); err != nil {
		t.Fatalf("OpenAll: %v", err)
	}
	if m.ShardCount() != shards {
		t.Fatalf("ShardCount = %d, want %d from /gateway/bot", m.ShardCount(), shards)
	}
	got := m.Shards()
	if len(got) != shards {
		t.Fatalf("%d shards open, want %d", len(got), shards)
	}
	for id, gw := range got {
		if gw.ShardID() != id || gw.ShardCount() != shards || gw.Status() != gateway.StatusReady {
			t.Errorf("shard %d: id %d count %d status %v", id, gw.ShardID(), gw.ShardCount(), gw.Status())
		}
	}
	st := fake.Stats()
	if st.Identifies != shards || st.IdentifyViolations != 0 || st.LiveSessions != shards {
		t.Fatalf("fake stats = %+v, want %d identifies, no violation", st, shards)
	}
	checkBucketOrder(t, fake.Identifies(), mc)

	for _, ev := range dispatchEvery(t, fake, log, true) {
		if want := ShardIDByGuild(ev.guild, shards); ev.shardID != want {
			t.Errorf("guild %d delivered on shard %d, want %d", ev.guild, ev.shardID, want)
		}
	}
	for _, g := range fake.GuildIDs() {
		if gw := m.ShardByGuildID(g); gw == nil || gw.ShardID() != ShardIDByGuild(g, shards) {
			t.Errorf("ShardByGuildID(%d) = %v", g, gw)
		}
	}
	// Open again: nothing to do, no identify.
	if err := m.OpenAll(testCtx(t)); err != nil || fake.Stats().Identifies != shards {
		t.Fatalf("second OpenAll = %v, identifies %d", err, fake.Stats().Identifies)
	}
}

// checkBucketOrder: within each rate-limit key, identifies come in shard ID
// order (round after round), and none was a violation. Across keys there is no
// order to check: buckets are independent, and one shard's dial may lag.
func checkBucketOrder(t *testing.T, recs []gatewaytest.IdentifyRecord, mc int) {
	t.Helper()
	slices.SortStableFunc(recs, func(a, b gatewaytest.IdentifyRecord) int { return a.Time.Compare(b.Time) })
	last := map[int]int{}
	for _, r := range recs {
		if r.Violation {
			t.Errorf("identify of shard %d was a violation", r.ShardID)
		}
		if prev, ok := last[r.Key]; ok && r.ShardID < prev {
			t.Errorf("key %d: shard %d identified after shard %d", r.Key, r.ShardID, prev)
		}
		last[r.Key] = r.ShardID
		if r.Key != r.ShardID%mc {
			t.Errorf("shard %d recorded with key %d, want %d", r.ShardID, r.Key, r.ShardID%mc)
		}
	}
	if len(last) != min(mc, len(recs)) {
		t.Errorf("%d keys used, want %d", len(last), mc)
	}
}

// Buckets in order with several rounds: 12 shards, max_concurrency 4.
func TestOpenBucketsInOrder(t *testing.T) {
	const shards, mc = 12, 4
	fake := newFake(t, gatewaytest.WithMaxConcurrency(mc))
	m := newTestManager(t, fake, nil, WithShardCount(shards), WithRateLimiterConfigOpt(WithMaxConcurrency(mc)))
	if err := m.OpenAll(testCtx(t)); err != nil {
		t.Fatalf("OpenAll: %v", err)
	}
	recs := fake.Identifies()
	if len(recs) != shards {
		for _, r := range recs {
			t.Logf("%s shard %d key %d violation %v", r.Time.Format("05.000000"), r.ShardID, r.Key, r.Violation)
		}
		t.Fatalf("%d identifies, want %d", len(recs), shards)
	}
	checkBucketOrder(t, recs, mc)
}

// OpenShard on a shard that is open, or opening, is ErrShardAlreadyOpen, and
// costs no identify.
func TestOpenShardTwice(t *testing.T) {
	fake := newFake(t, gatewaytest.WithShards(2))
	m := newTestManager(t, fake, nil, WithShardCount(2))
	ctx := testCtx(t)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.OpenShard(ctx, 1)
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrShardAlreadyOpen):
			t.Errorf("concurrent OpenShard: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d concurrent OpenShard succeeded, want 1", ok)
	}
	if err := m.OpenShard(ctx, 1); !errors.Is(err, ErrShardAlreadyOpen) {
		t.Fatalf("OpenShard on an open shard = %v", err)
	}
	if n := fake.Stats().Identifies; n != 1 {
		t.Fatalf("%d identifies, want 1", n)
	}
	if err := m.OpenShard(ctx, 2); !errors.Is(err, ErrInvalidShard) {
		t.Fatalf("OpenShard(2) of 2 = %v, want ErrInvalidShard", err)
	}
	if err := m.OpenShard(ctx, -1); !errors.Is(err, ErrInvalidShard) {
		t.Fatalf("OpenShard(-1) = %v, want ErrInvalidShard", err)
	}
}

// Hand a shard off and open it again from its state: RESUME, no IDENTIFY, and
// the events sent meanwhile are replayed.
func TestHandoffAndResume(t *testing.T) {
	fake := newFake(t, gatewaytest.WithGuilds(4))
	log := &eventLog{}
	m := newTestManager(t, fake, log.handle, WithShardCount(1))
	ctx := testCtx(t)
	if err := m.OpenShard(ctx, 0); err != nil {
		t.Fatal(err)
	}
	dispatchEvery(t, fake, log, true)
	state, err := m.HandoffShard(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !state.Resumable() || state.Sequence == 0 {
		t.Fatalf("handoff state = %+v, want a resumable session", state)
	}
	if m.Shard(0) != nil {
		t.Fatal("handed-off shard still in the map")
	}
	if _, err := m.HandoffShard(ctx, 0); !errors.Is(err, ErrShardNotFound) {
		t.Fatalf("second handoff = %v, want ErrShardNotFound", err)
	}
	// Missed while nobody is connected: replayed on RESUME.
	for _, g := range fake.GuildIDs() {
		fake.Dispatch("TEST_EVENT", g, map[string]string{"guild_id": g.String()})
	}
	if err := m.OpenShardWithState(ctx, ShardKey{ID: 0, Count: 1}, state); err != nil {
		t.Fatalf("open from state: %v", err)
	}
	eventually(t, 5*time.Second, "replayed events", func() bool { return len(log.snapshot()) == 2*len(fake.GuildIDs()) })
	if n := fake.Stats().Identifies; n != 1 {
		t.Fatalf("%d identifies, want 1 (the resume must not identify)", n)
	}
	resumes := fake.Resumes()
	if len(resumes) != 1 || !resumes[0].OK || resumes[0].SessionID != state.SessionID {
		t.Fatalf("resumes = %+v, want one OK resume of %s", resumes, state.SessionID)
	}
	if gw := m.Shard(0); gw == nil || gw.Status() != gateway.StatusReady {
		t.Fatalf("resumed shard not ready: %v", gw)
	}
}

// A fatal close on one shard is reported, costs exactly one identify attempt
// (no loop), and does not stop the others.
func TestFatalCloseOneShard(t *testing.T) {
	fake := newFake(t, gatewaytest.WithShards(3), gatewaytest.WithGuilds(9))
	limiter := newCountingLimiter(newTestLimiter(1))
	t.Cleanup(func() { limiter.Close(context.Background()) })
	// Shard 1 identifies with a wrong token: 4004.
	create := func(token string, h gateway.EventHandlerFunc, opts ...gateway.ConfigOpt) gateway.Gateway {
		c := gateway.DefaultConfig()
		c.Apply(opts)
		if c.ShardID == 1 {
			token = "wrong-token"
		}
		return gateway.New(token, h, opts...)
	}
	log := &eventLog{}
	m := newTestManager(t, fake, log.handle, WithShardCount(3), WithRateLimiter(limiter), WithGatewayCreateFunc(create))
	err := m.OpenAll(testCtx(t))
	var se *ShardError
	if !errors.As(err, &se) || se.ShardID != 1 || gateway.CloseStatus(err) != gateway.CloseAuthenticationFailed || !gateway.IsFatal(err) {
		t.Fatalf("OpenAll = %v, want shard 1's 4004", err)
	}
	if !errors.Is(m.LastOpenError(), err) && m.LastOpenError().Error() != err.Error() {
		t.Fatalf("LastOpenError = %v", m.LastOpenError())
	}
	if keys := m.ShardKeys(); !slices.Equal(keys, []ShardKey{{ID: 0, Count: 3}, {ID: 2, Count: 3}}) {
		t.Fatalf("shards = %v, want 0 and 2 (1 removed)", keys)
	}
	// The others work: events of their guilds arrive.
	for _, g := range fake.GuildIDs() {
		if ShardIDByGuild(g, 3) != 1 {
			fake.Dispatch("TEST_EVENT", g, map[string]string{"guild_id": g.String()})
		}
	}
	eventually(t, 5*time.Second, "events of shards 0 and 2", func() bool { return len(log.snapshot()) == 6 })
	if n := limiter.count(1); n != 1 {
		t.Fatalf("shard 1 tried to identify %d times, want 1", n)
	}
	// Shards 0 and 2: exactly one identify each.
	per := map[int]int{}
	for _, r := range fake.Identifies() {
		per[r.ShardID]++
	}
	if per[0] != 1 || per[2] != 1 || per[1] != 0 || len(per) != 2 {
		t.Fatalf("identifies per shard = %v, want 0 and 2 once each", per)
	}
}

// A shard stopped by a fatal close after READY is removed, reported to the
// CloseHandler, and can be opened again.
func TestFatalCloseAfterReadyReopen(t *testing.T) {
	fake := newFake(t, gatewaytest.WithShards(2))
	closed := make(chan error, 1)
	m := newTestManager(t, fake, nil, WithShardCount(2), WithCloseHandler(func(gw gateway.Gateway, err error, _ bool) {
		if gw.ShardID() == 1 {
			closed <- err
		}
	}))
	ctx := testCtx(t)
	if err := m.OpenAll(ctx); err != nil {
		t.Fatal(err)
	}
	if n := fake.CloseConnections(1, gateway.CloseDisallowedIntents, "disallowed"); n != 1 {
		t.Fatalf("closed %d connections", n)
	}
	select {
	case err := <-closed:
		if gateway.CloseStatus(err) != gateway.CloseDisallowedIntents {
			t.Fatalf("close handler got %v", err)
		}
	case <-ctx.Done():
		t.Fatal("close handler not called")
	}
	eventually(t, 5*time.Second, "shard 1 removed", func() bool { return m.Shard(1) == nil })
	if m.Shard(0) == nil || m.Shard(0).Status() != gateway.StatusReady {
		t.Fatal("shard 0 was disturbed")
	}
	if err := m.OpenShard(ctx, 1); err != nil {
		t.Fatalf("reopen shard 1: %v", err)
	}
}

// Close closes every shard with 1000 (sessions end), in parallel, closes the
// limiter it built, and opens nothing after.
func TestClose(t *testing.T) {
	fake := newFake(t, gatewaytest.WithShards(4), gatewaytest.WithMaxConcurrency(4))
	m := newTestManager(t, fake, nil)
	ctx := testCtx(t)
	if err := m.OpenAll(ctx); err != nil {
		t.Fatal(err)
	}
	m.CloseShard(ctx, 3)
	m.CloseShard(ctx, 3) // unknown now: nothing
	if m.Shard(3) != nil || len(m.Shards()) != 3 {
		t.Fatalf("CloseShard left %v", m.ShardKeys())
	}
	m.Close(ctx)
	if len(m.Shards()) != 0 {
		t.Fatalf("shards after Close: %v", m.ShardKeys())
	}
	eventually(t, 5*time.Second, "sessions to end", func() bool { return fake.Stats().LiveSessions == 0 })
	for _, s := range fake.Sessions() {
		if !s.Ended {
			t.Errorf("session of shard %d not ended by Close (1000)", s.ShardID)
		}
	}
	if err := m.OpenShard(ctx, 0); !errors.Is(err, ErrManagerClosed) {
		t.Fatalf("OpenShard after Close = %v, want ErrManagerClosed", err)
	}
	m.Close(ctx) // twice is fine
}

// Shards returns a copy: changing it changes nothing in the manager.
func TestShardsIsACopy(t *testing.T) {
	fake := newFake(t)
	m := newTestManager(t, fake, nil, WithShardCount(1))
	if err := m.OpenShard(testCtx(t), 0); err != nil {
		t.Fatal(err)
	}
	s := m.Shards()
	delete(s, 0)
	s[5] = nil
	if m.Shard(0) == nil || m.Shard(5) != nil || len(m.Shards()) != 1 {
		t.Fatal("Shards() is not a copy")
	}
}

// Readers never block or race with opens, closes, handoffs and Close (run
// with -race); Close returns while they keep reading.
func TestConcurrentReadersDuringChanges(t *testing.T) {
	fake := newFake(t, gatewaytest.WithShards(6), gatewaytest.WithMaxConcurrency(6), gatewaytest.WithGuilds(30))
	m := newTestManager(t, fake, nil, WithRateLimiterConfigOpt(WithMaxConcurrency(6)))
	ctx := testCtx(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	guilds := fake.GuildIDs()
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				for id, gw := range m.Shards() {
					if gw == nil || gw.ShardID() != id {
						t.Errorf("Shards()[%d] = %v", id, gw)
						return
					}
				}
				if gw := m.ShardByGuildID(guilds[i%len(guilds)]); gw != nil && !(ShardKey{ID: gw.ShardID(), Count: gw.ShardCount()}).Owns(guilds[i%len(guilds)]) {
					t.Errorf("ShardByGuildID returned a shard that does not own the guild")
					return
				}
				_ = m.Shard(i % 6)
				_ = m.ShardKeys()
			}
		}()
	}
	if err := m.OpenAll(ctx); err != nil {
		t.Errorf("OpenAll: %v", err)
	}
	m.CloseShard(ctx, 0)
	if _, err := m.HandoffShard(ctx, 1); err != nil {
		t.Errorf("HandoffShard: %v", err)
	}
	if err := m.OpenShard(ctx, 0); err != nil {
		t.Errorf("reopen 0: %v", err)
	}
	m.Close(ctx)
	close(stop)
	wg.Wait()
}

// WithShardIDs opens only those shards (here of a discovered count); an ID
// beyond the discovered count is a config error naming ShardIDs.
func TestOpenShardIDsSubset(t *testing.T) {
	fake := newFake(t, gatewaytest.WithShards(4), gatewaytest.WithGuilds(8))
	m := newTestManager(t, fake, nil, WithShardIDs(3, 1))
	if err := m.OpenAll(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if keys := m.ShardKeys(); !slices.Equal(keys, []ShardKey{{ID: 1, Count: 4}, {ID: 3, Count: 4}}) {
		t.Fatalf("shards = %v, want 1/4 and 3/4", keys)
	}
	for _, g := range fake.GuildIDs() {
		gw := m.ShardByGuildID(g)
		if owner := ShardIDByGuild(g, 4); (owner == 1 || owner == 3) != (gw != nil) {
			t.Errorf("ShardByGuildID(%d) = %v with shard %d owning it", g, gw, owner)
		}
	}

	m2 := newTestManager(t, fake, nil, WithShardIDs(0, 4))
	var ce *ConfigError
	if err := m2.OpenAll(testCtx(t)); !errors.As(err, &ce) || ce.Field != "ShardIDs" {
		t.Fatalf("OpenAll with shard 4 of 4 = %v, want a ConfigError on ShardIDs", err)
	}
}
