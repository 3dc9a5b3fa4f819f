package eventsink_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/redis/go-redis/v9"
)

// A consumer of the fleet's stream: one consumer group per application, any
// number of consumers in it, each entry acknowledged once handled. Entries of
// one shard's session come in seq order, each once.
func Example_consumer() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	const stream, group = "{shardfleet}:events", "my-bot"
	// "$": only new events; "0" would replay what the stream still holds.
	if err := rdb.XGroupCreateMkStream(ctx, stream, group, "$").Err(); err != nil &&
		err.Error() != "BUSYGROUP Consumer Group name already exists" {
		log.Fatal(err)
	}
	for {
		res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: group, Consumer: "consumer-1", Streams: []string{stream, ">"}, Count: 100, Block: 0,
		}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			log.Fatal(err)
		}
		for _, msg := range res[0].Messages {
			v := msg.Values
			if v["type"] == "MESSAGE_CREATE" {
				fmt.Printf("shard %v seq %v: %v\n", v["shard"], v["seq"], v["data"])
			}
			rdb.XAck(ctx, stream, group, msg.ID)
		}
	}
}
