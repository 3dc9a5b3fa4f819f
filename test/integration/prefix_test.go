package integration

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/redislimiter"
)

// TestGoProgramSharesTheWorkersLimiter is the prefix agreement (issue 14): a
// Go program using pkg/redislimiter with WithKeyPrefix equal to the workers'
// KEY_PREFIX shares their identify limiter. The prefix is "app:", which has
// no hash tag, so both sides must wrap it the same way. The worker IDENTIFYs
// its shards of count `shards` while the program IDENTIFYs shards of another
// count (no duplicate session), all in the one bucket of max_concurrency 1:
// the fake must see every IDENTIFY paced, and the limiter's arrival counter
// must have counted every IDENTIFY of both. With two limiters (one per
// prefix spelling) each would pace only its own, and their IDENTIFYs, which
// overlap in time, would come closer than the fake's window.
func TestGoProgramSharesTheWorkersLimiter(t *testing.T) {
	const (
		shards     = 4
		appPrefix  = "app:"
		ownShards  = 4
		ownCount   = 2 * shards
		totalIdent = shards + ownShards
	)
	f := newFleet(t, shards, 0)
	f.startWorker("w1", "KEY_PREFIX="+appPrefix)
	// Start the program's IDENTIFYs once the worker's have begun, so that
	// both run at the same time.
	poll(t, "the worker's first IDENTIFY", 30*time.Second, func() bool { return f.fake.stats(t).Identifies > 0 })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)
	l := redislimiter.New(f.client, redislimiter.WithKeyPrefix(appPrefix), redislimiter.WithMaxConcurrency(1),
		redislimiter.WithWindow(identifyWindow), redislimiter.WithMargin(20*time.Millisecond),
		redislimiter.WithLogger(quiet))
	defer l.Close(context.Background())
	noEvents := func(gateway.Gateway, gateway.EventType, int, json.RawMessage) {}
	gws := make([]gateway.Gateway, ownShards)
	var wg sync.WaitGroup
	for id := range gws {
		gws[id] = gateway.New(f.token, noEvents, gateway.WithURL(f.fake.gatewayURL),
			gateway.WithShardID(id), gateway.WithShardCount(ownCount), gateway.WithLogger(quiet),
			gateway.WithIdentifyLimiter(l))
		wg.Go(func() {
			if err := gws[id].Open(ctx); err != nil {
				t.Errorf("program's shard %d/%d: open: %v", id, ownCount, err)
			}
		})
	}
	wg.Wait()
	for _, g := range gws {
		g.Close(ctx)
	}
	poll(t, "every IDENTIFY of the worker and the program", 30*time.Second, func() bool {
		return f.fake.stats(t).Identifies >= totalIdent
	})

	f.checkInvariants()
	if st := f.fake.stats(t); st.Identifies != totalIdent {
		t.Errorf("the fake saw %d IDENTIFYs, want %d (%d of the worker, %d of the program)",
			st.Identifies, totalIdent, shards, ownShards)
	}
	// Every grant takes one arrival number from the one counter of the
	// prefix as the workers normalise it.
	seq, err := f.client.Get(ctx, keyspace.NewKeys(appPrefix).IdentifySeq()).Int()
	if err != nil || seq != totalIdent {
		t.Errorf("the limiter under %q granted %d permits (%v), want %d: the worker and the program do not share it",
			keyspace.NormalizePrefix(appPrefix), seq, err, totalIdent)
	}
	f.checkNoSecret()
}
