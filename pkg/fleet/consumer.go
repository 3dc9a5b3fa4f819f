package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Event is one dispatch as the fleet committed it to its event stream
// (internal/eventsink: "The stream"). (Shard, Session, Seq) identifies it.
type Event struct {
	ID      string // the stream entry's ID, for Ack
	Shard   int
	Count   int
	Seq     int
	Session string
	Type    string // e.g. MESSAGE_CREATE
	Data    json.RawMessage
}

// ConsumerConfig configures a Consumer. Group and Name are required.
type ConsumerConfig struct {
	// Group is the consumer group: one per application. Created if missing.
	Group string
	// Name is this consumer within the group; a consumer restarted with
	// the same name first gets back what it had read and not acked.
	Name string
	// Prefetch bounds the events one Next returns (XREADGROUP COUNT).
	// Default 100.
	Prefetch int
	// Block bounds how long Next waits for new events. Default 1 s.
	Block time.Duration
	// ClaimIdle: events another consumer read and has not acked for this
	// long are taken over (XAUTOCLAIM): that consumer is presumed crashed.
	// Default 30 s.
	ClaimIdle time.Duration
	// StartAtBeginning makes a group created here start with the stream's
	// oldest event instead of the next new one.
	StartAtBeginning bool
}

// Consumer reads the fleet's event stream in a consumer group. It is not
// safe for concurrent use: run one per goroutine, each with its own Name.
type Consumer struct {
	c      *Client
	cfg    ConsumerConfig
	own    string // re-reading its own pending events after this ID; "" once done
	cursor string // XAUTOCLAIM's cursor
}

// Consume joins cfg.Group (creating it when missing) as cfg.Name.
func (c *Client) Consume(ctx context.Context, cfg ConsumerConfig) (*Consumer, error) {
	if cfg.Group == "" || cfg.Name == "" {
		return nil, errors.New("fleet: ConsumerConfig needs Group and Name")
	}
	cfg.Prefetch = cmpOr(cfg.Prefetch, 100)
	cfg.Block = cmpOr(cfg.Block, time.Second)
	cfg.ClaimIdle = cmpOr(cfg.ClaimIdle, 30*time.Second)
	start := "$"
	if cfg.StartAtBeginning {
		start = "0"
	}
	err := c.redis.XGroupCreateMkStream(ctx, c.keys.Events(), cfg.Group, start).Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return nil, fmt.Errorf("fleet: create consumer group %s: %w", cfg.Group, err)
	}
	return &Consumer{c: c, cfg: cfg, own: "0-0", cursor: "0-0"}, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Next returns up to Prefetch events: first those this consumer read before
// and did not ack, then those another consumer left unacked past ClaimIdle,
// then new ones (waiting up to Block). None: nothing to do yet. Ack each
// event once handled; an event not acked is delivered again (to this
// consumer after a restart, or to another after ClaimIdle), so handle
// events idempotently by (Shard, Session, Seq).
func (k *Consumer) Next(ctx context.Context) ([]Event, error) {
	if k.own != "" {
		evs, err := k.read(ctx, k.own, -1)
		if err != nil {
			return nil, err
		}
		if len(evs) > 0 {
			k.own = evs[len(evs)-1].ID
			return evs, nil
		}
		k.own = ""
	}
	msgs, cursor, err := k.c.redis.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: k.c.keys.Events(),
		Group: k.cfg.Group, Consumer: k.cfg.Name, MinIdle: k.cfg.ClaimIdle, Start: k.cursor,
		Count: int64(k.cfg.Prefetch)}).Result()
	if err != nil {
		return nil, fmt.Errorf("fleet: take over idle events: %w", err)
	}
	k.cursor = cursor
	if len(msgs) > 0 {
		return parseEvents(msgs), nil
	}
	return k.read(ctx, ">", k.cfg.Block)
}

// read is one XREADGROUP after id (an ID: own pending; ">": new).
func (k *Consumer) read(ctx context.Context, id string, block time.Duration) ([]Event, error) {
	res, err := k.c.redis.XReadGroup(ctx, &redis.XReadGroupArgs{Group: k.cfg.Group, Consumer: k.cfg.Name,
		Streams: []string{k.c.keys.Events(), id}, Count: int64(k.cfg.Prefetch), Block: block}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fleet: read events: %w", err)
	}
	var out []Event
	for _, s := range res {
		out = append(out, parseEvents(s.Messages)...)
	}
	return out, nil
}

// Ack marks events handled: they are not delivered again.
func (k *Consumer) Ack(ctx context.Context, events ...Event) error {
	if len(events) == 0 {
		return nil
	}
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	if err := k.c.redis.XAck(ctx, k.c.keys.Events(), k.cfg.Group, ids...).Err(); err != nil {
		return fmt.Errorf("fleet: ack events: %w", err)
	}
	return nil
}

// parseEvents decodes stream entries. A field that does not parse is left
// zero: the entry is still delivered (and can be acked).
func parseEvents(msgs []redis.XMessage) []Event {
	out := make([]Event, len(msgs))
	for i, m := range msgs {
		str := func(k string) string { s, _ := m.Values[k].(string); return s }
		num := func(k string) int { n, _ := strconv.Atoi(str(k)); return n }
		out[i] = Event{ID: m.ID, Shard: num("shard"), Count: num("count"), Seq: num("seq"),
			Session: str("session"), Type: str("type"), Data: json.RawMessage(str("data"))}
	}
	return out
}
