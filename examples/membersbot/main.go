// Command membersbot is a small bot built on a shardfleet fleet with
// pkg/fleet: it reads MESSAGE_CREATE from the fleet's event stream in a
// consumer group and, for a message that says "!members", requests the
// guild's members whose name starts with the author's (op 8, through the
// shard's owner) and sets the fleet's presence to the member count it got
// (op 3 to every shard, and every later IDENTIFY).
//
//	REDIS_URL=redis://127.0.0.1:6379 KEY_PREFIX={shardfleet}: go run ./examples/membersbot
//
// Run any number of copies: the consumer group shares the events among them
// (set CONSUMER to a distinct name each), and one that crashes has its
// unacked events taken over by the others after 30 s.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/disgoorg/snowflake/v2"
	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/pkg/fleet"
	"github.com/shardfleet/shardfleet/pkg/gateway"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	opts, err := redis.ParseURL(os.Getenv("REDIS_URL"))
	if err != nil {
		log.Error("REDIS_URL: want redis://host:port", "err", err)
		os.Exit(2)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	name := os.Getenv("CONSUMER")
	if name == "" {
		name = "membersbot-1"
	}
	if err := run(ctx, fleet.NewClient(rdb, os.Getenv("KEY_PREFIX")), name, log); err != nil && ctx.Err() == nil {
		log.Error("membersbot stopped", "err", err)
		os.Exit(1)
	}
}

// message is the part of MESSAGE_CREATE the bot reads.
type message struct {
	GuildID snowflake.ID `json:"guild_id"`
	Content string       `json:"content"`
	Author  struct {
		Username string `json:"username"`
	} `json:"author"`
}

func run(ctx context.Context, c *fleet.Client, name string, log *slog.Logger) error {
	events, err := c.Consume(ctx, fleet.ConsumerConfig{Group: "membersbot", Name: name})
	if err != nil {
		return err
	}
	log.Info("membersbot: reading the fleet's events", "consumer", name)
	for ctx.Err() == nil {
		batch, err := events.Next(ctx)
		if err != nil {
			return err
		}
		for _, ev := range batch {
			if ev.Type == "MESSAGE_CREATE" {
				handle(ctx, c, ev, log)
			}
		}
		if err := events.Ack(ctx, batch...); err != nil {
			return err
		}
	}
	return nil
}

// handle answers one MESSAGE_CREATE. Its failures are logged, not returned:
// one bad message must not stop the bot.
func handle(ctx context.Context, c *fleet.Client, ev fleet.Event, log *slog.Logger) {
	var m message
	if json.Unmarshal(ev.Data, &m) != nil || m.GuildID == 0 || !strings.HasPrefix(m.Content, "!members") {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	query := m.Author.Username
	chunks, err := c.RequestMembers(ctx, gateway.RequestGuildMembers{GuildID: m.GuildID, Query: &query, Limit: 100})
	if err != nil {
		log.Warn("request members", "guild_id", m.GuildID, "err", err)
		return
	}
	members := 0
	for _, ch := range chunks {
		var d struct {
			Members []json.RawMessage `json:"members"`
		}
		_ = json.Unmarshal(ch.Data, &d) // a chunk without members counts 0
		members += len(d.Members)
	}
	status := fmt.Sprintf("%d members like %s", members, query)
	if _, err := c.SetPresence(ctx, gateway.PresenceUpdate{Status: "online",
		Activities: []gateway.Activity{{Name: status, Type: 0}}}); err != nil {
		log.Warn("set presence", "err", err)
		return
	}
	log.Info("answered", "guild_id", m.GuildID, "shard", ev.Shard, "presence", status)
}
