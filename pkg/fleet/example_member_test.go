package fleet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/redistest"
	"github.com/shardfleet/shardfleet/pkg/fleet"
	"github.com/shardfleet/shardfleet/pkg/fleet/member"
	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// A fleet member runs in this program against a fake Discord and a Redis of
// its own; the bot's side (a Client on the same Redis, as in any other
// process) consumes the stream and sets the fleet's presence, which the
// member sends on its shard. Without the fakes: member.Config{Token: your
// token, Redis: your Redis} and the production timings of DefaultConfig.
func Example_member() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rdb, stopRedis, err := startRedis()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stopRedis()
	discord := gatewaytest.NewServer(gatewaytest.WithShards(1), gatewaytest.WithIdentifyWindow(60*time.Millisecond))
	defer discord.Close()

	// The in-process Handler sees what the member committed to the stream.
	committed := make(chan fleet.Event, 1)
	cfg := member.DefaultConfig()
	cfg.Token, cfg.Redis, cfg.WorkerID = discord.Token(), rdb, "example"
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.APIURL, cfg.GatewayURL = discord.APIURL(), discord.GatewayURL()
	cfg.ShardCount, cfg.MaxConcurrency = 1, 1
	// Compressed timings, as for tests: a member normally keeps the defaults.
	cfg.LeaseTTL, cfg.LeaseRenewInterval, cfg.LeaseRenewDeadline = 600*time.Millisecond, 80*time.Millisecond, 400*time.Millisecond
	cfg.IdentifyWindow, cfg.IdentifyMargin = 60*time.Millisecond, 20*time.Millisecond
	cfg.Handler = func(e fleet.Event) {
		select {
		case committed <- e:
		default:
		}
	}
	m, err := member.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	runCtx, stop := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() { stopped <- m.Run(runCtx) }()
	defer func() { stop(); <-stopped }()

	client := fleet.NewClient(rdb, cfg.KeyPrefix)
	events, err := client.Consume(ctx, fleet.ConsumerConfig{Group: "example", Name: "bot-1", Prefetch: 1,
		StartAtBeginning: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	first, err := nextEvent(ctx, events)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("stream: %s, seq %d of shard %d/%d\n", first.Type, first.Seq, first.Shard, first.Count)
	e := <-committed
	fmt.Printf("handler: %s, seq %d of shard %d/%d\n", e.Type, e.Seq, e.Shard, e.Count)
	_ = events.Ack(ctx, first)

	queued, err := client.SetPresence(ctx, gateway.PresenceUpdate{Status: "online",
		Activities: []gateway.Activity{{Name: "the example", Type: 0}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	out, err := client.WaitOutcome(ctx, queued[0].ID)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("presence: %s on shard %d/%d\n", out.State, out.Shard, out.Count)
	for _, c := range discord.Commands() {
		var p gateway.PresenceUpdate
		if c.Op == gateway.OpPresenceUpdate && json.Unmarshal(c.D, &p) == nil {
			fmt.Printf("Discord got op %d on shard %d: %s, playing %s\n", c.Op, c.ShardID, p.Status, p.Activities[0].Name)
		}
	}
	// Output:
	// stream: READY, seq 1 of shard 0/1
	// handler: READY, seq 1 of shard 0/1
	// presence: sent on shard 0/1
	// Discord got op 3 on shard 0: online, playing the example
}

// startRedis starts a redis-server of the example's own (internal/redistest:
// a free loopback port, files in a temporary directory).
func startRedis() (rdb *redis.Client, stop func(), err error) {
	dir, err := os.MkdirTemp("", "fleet-example-")
	if err != nil {
		return nil, nil, err
	}
	srv, err := redistest.StartServer(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	rdb = redis.NewClient(&redis.Options{Addr: srv.Addr()})
	return rdb, func() { _ = rdb.Close(); srv.Stop(); _ = os.RemoveAll(dir) }, nil
}

// nextEvent waits for the consumer's next event.
func nextEvent(ctx context.Context, c *fleet.Consumer) (fleet.Event, error) {
	for {
		evs, err := c.Next(ctx)
		if err != nil || len(evs) > 0 {
			if err != nil {
				return fleet.Event{}, err
			}
			return evs[0], nil
		}
	}
}
