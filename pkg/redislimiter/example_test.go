package redislimiter_test

import (
	"context"
	"log"
	"net/http"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/pkg/redislimiter"
	"github.com/shardfleet/shardfleet/pkg/sharding"
)

// A worker discovers max_concurrency and the daily budget once, shares them
// through Redis, and hands the limiter to its shard manager or gateways.
func Example() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	defer rdb.Close()

	bot, err := sharding.FetchGatewayBot(ctx, http.DefaultClient, "https://discord.com/api/v10", "BOT_TOKEN")
	if err != nil {
		log.Fatal(err)
	}
	if err := redislimiter.StoreMaxConcurrency(ctx, rdb, "mybot", bot.SessionStartLimit.MaxConcurrency); err != nil {
		log.Fatal(err)
	}
	mc, err := redislimiter.LoadMaxConcurrency(ctx, rdb, "mybot")
	if err != nil {
		log.Fatal(err)
	}
	limiter := redislimiter.New(rdb, redislimiter.WithKeyPrefix("mybot"), redislimiter.WithMaxConcurrency(mc))
	defer limiter.Close(ctx)
	if err := limiter.Err(); err != nil {
		log.Fatal(err)
	}
	sl := bot.SessionStartLimit
	if err := limiter.SetBudget(ctx, sl.Remaining, sl.ResetAfterDuration()); err != nil {
		log.Fatal(err)
	}

	// What a gateway does around every IDENTIFY (never around a RESUME):
	if err := limiter.WaitBucket(ctx, 7); err != nil {
		log.Fatal(err) // ctx ended, Redis unreachable, or ErrBudgetExhausted
	}
	// ... write IDENTIFY ...
	limiter.UnlockBucket(7)
}
