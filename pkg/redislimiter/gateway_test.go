package redislimiter

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/redistest"
	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
	"github.com/shardfleet/shardfleet/pkg/sharding"
)

// TestGatewaysAgainstFakeDiscord: real gateways of two "processes" (two
// limiters, own Redis connections) identify against the fake Discord, which
// records every IDENTIFY on its own clock. max_concurrency comes from the
// fake's /gateway/bot through sharding.FetchGatewayBot and Redis. The fake must see no
// identify of a key sooner than its window after the previous one; its window
// is below the limiter's window + margin, so loopback read lag on a loaded
// machine is not counted as a violation.
func TestGatewaysAgainstFakeDiscord(t *testing.T) {
	const shards = 8
	fake := gatewaytest.NewServer(gatewaytest.WithShards(shards), gatewaytest.WithMaxConcurrency(2),
		gatewaytest.WithIdentifyWindow(20*time.Millisecond), gatewaytest.WithLogger(discard))
	t.Cleanup(fake.Close)
	s := redistest.Start(t)
	ctx := ctxT(t, 20*time.Second)

	httpClient := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	bot, err := sharding.FetchGatewayBot(ctx, httpClient, fake.APIURL(), fake.Token())
	if err != nil {
		t.Fatal(err)
	}
	prefix := uniquePrefix(t)
	if err := StoreMaxConcurrency(ctx, newClient(t, s.Addr()), prefix, bot.SessionStartLimit.MaxConcurrency); err != nil {
		t.Fatal(err)
	}
	mc, err := LoadMaxConcurrency(ctx, newClient(t, s.Addr()), prefix)
	if err != nil || mc != 2 {
		t.Fatalf("max_concurrency %d, %v; want 2", mc, err)
	}
	ls := []*Limiter{
		newLimiter(t, newClient(t, s.Addr()), testOpts(prefix, mc)...),
		newLimiter(t, newClient(t, s.Addr()), testOpts(prefix, mc)...),
	}
	noEvents := func(gateway.Gateway, gateway.EventType, int, json.RawMessage) {}
	var wg sync.WaitGroup
	gws := make([]gateway.Gateway, shards)
	for id := range shards {
		gws[id] = gateway.New(fake.Token(), noEvents, gateway.WithURL(fake.GatewayURL()),
			gateway.WithShardID(id), gateway.WithShardCount(shards), gateway.WithLogger(discard),
			gateway.WithIdentifyLimiter(ls[id%2]))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := gws[id].Open(ctx); err != nil {
				t.Errorf("shard %d: open: %v", id, err)
			}
		}()
	}
	wg.Wait()
	for _, g := range gws {
		g.Close(ctx)
	}
	st := fake.Stats()
	if st.Identifies != shards || st.IdentifyViolations != 0 {
		t.Fatalf("fake saw %d identifies with %d violations, want %d and 0", st.Identifies, st.IdentifyViolations, shards)
	}
	if g := len(checkLog(t, mustLog(t, ls[0]), rulesOf(ls[0]))); g != shards {
		t.Fatalf("%d grants, want %d", g, shards)
	}
}
