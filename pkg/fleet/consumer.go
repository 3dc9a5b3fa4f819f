package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Event is one dispatch as the fleet committed it to its event stream
// (internal/eventsink: "The stream"). (Shard, Session, Seq) identifies it.
type Event struct {
	ID        string // the stream entry's ID, for Ack (with Partition)
	Partition int    // the partition whose stream holds it
	Shard     int
	Count     int
	Seq       int
	Session   string
	Type      string // e.g. MESSAGE_CREATE
	Data      json.RawMessage
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

// Consumer reads the fleet's event streams, one per partition, in a consumer
// group (one group per stream, all of the same name). A shard's events are
// all in one stream, so each shard's events come in commit order. It is not
// safe for concurrent use: run one per goroutine, each with its own Name.
type Consumer struct {
	c       *Client
	cfg     ConsumerConfig
	streams []string // the partitions' streams
	own     []string // per stream: re-reading its own pending events after this ID; "" once done
	cursor  []string // per stream: XAUTOCLAIM's cursor
	next    int      // the stream a blocking wait watches next (Redis Cluster)
	// oneRead: one XREADGROUP may name every stream (they share a slot, or
	// the client is not a Redis Cluster client).
	oneRead bool
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
	keys, err := c.partitioned(ctx)
	if err != nil {
		return nil, err
	}
	k := &Consumer{c: c, cfg: cfg}
	for p := range keys.Partitions() {
		stream := keys.Events(p)
		err := c.redis.XGroupCreateMkStream(ctx, stream, cfg.Group, start).Err()
		if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
			return nil, fmt.Errorf("fleet: create consumer group %s on %s: %w", cfg.Group, stream, err)
		}
		k.streams = append(k.streams, stream)
		k.own = append(k.own, "0-0")
		k.cursor = append(k.cursor, "0-0")
	}
	_, cluster := c.redis.(*redis.ClusterClient)
	k.oneRead = !cluster || len(k.streams) == 1
	return k, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Next returns up to Prefetch events per stream: first those this consumer
// read before and did not ack, then those another consumer left unacked past
// ClaimIdle, then new ones (waiting up to Block). None: nothing to do yet.
// Ack each event once handled; an event not acked is delivered again (to
// this consumer after a restart, or to another after ClaimIdle), so handle
// events idempotently by (Shard, Session, Seq).
func (k *Consumer) Next(ctx context.Context) ([]Event, error) {
	if evs, err := k.readOwn(ctx); err != nil || len(evs) > 0 {
		return evs, err
	}
	if evs, err := k.takeOver(ctx); err != nil || len(evs) > 0 {
		return evs, err
	}
	if k.oneRead {
		return k.read(ctx, k.all(), ">", k.cfg.Block)
	}
	// Redis Cluster: the streams are in different slots, which one command
	// cannot name. Look at all of them (a pipeline: one round trip per
	// master), then wait on one in turn.
	evs, err := k.read(ctx, k.all(), ">", -1)
	if err != nil || len(evs) > 0 {
		return evs, err
	}
	i := k.next
	k.next = (k.next + 1) % len(k.streams)
	return k.read(ctx, []int{i}, ">", max(k.cfg.Block/time.Duration(len(k.streams)), 10*time.Millisecond))
}

// all is every stream's index.
func (k *Consumer) all() []int {
	out := make([]int, len(k.streams))
	for i := range out {
		out[i] = i
	}
	return out
}

// readOwn re-reads, stream by stream, what this consumer read before and did
// not ack.
func (k *Consumer) readOwn(ctx context.Context) ([]Event, error) {
	for i, after := range k.own {
		if after == "" {
			continue
		}
		evs, err := k.readAfter(ctx, i, after)
		if err != nil || len(evs) > 0 {
			return evs, err
		}
		k.own[i] = ""
	}
	return nil, nil
}

func (k *Consumer) readAfter(ctx context.Context, i int, after string) ([]Event, error) {
	evs, err := k.read(ctx, []int{i}, after, -1)
	if len(evs) > 0 {
		k.own[i] = evs[len(evs)-1].ID
	}
	return evs, err
}

// takeOver claims (XAUTOCLAIM) what other consumers left unacked past
// ClaimIdle, on every stream in one pipeline.
func (k *Consumer) takeOver(ctx context.Context) ([]Event, error) {
	pipe := k.c.redis.Pipeline()
	cmds := make([]*redis.XAutoClaimCmd, len(k.streams))
	for i, stream := range k.streams {
		cmds[i] = pipe.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: stream, Group: k.cfg.Group,
			Consumer: k.cfg.Name, MinIdle: k.cfg.ClaimIdle, Start: k.cursor[i], Count: int64(k.cfg.Prefetch)})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("fleet: take over idle events: %w", err)
	}
	var out []Event
	for i, cmd := range cmds {
		msgs, cursor := cmd.Val()
		k.cursor[i] = cursor
		out = append(out, parseEvents(i, msgs)...)
	}
	return out, nil
}

// read is XREADGROUP after id (an ID: own pending; ">": new) on the streams
// idx: one command when they may share it (k.oneRead), else one per stream
// in a pipeline. block < 0: do not block.
func (k *Consumer) read(ctx context.Context, idx []int, id string, block time.Duration) ([]Event, error) {
	var groups [][]int
	if k.oneRead {
		groups = [][]int{idx}
	} else {
		for _, i := range idx {
			groups = append(groups, []int{i})
		}
	}
	pipe := k.c.redis.Pipeline()
	cmds := make([]*redis.XStreamSliceCmd, len(groups))
	for g, group := range groups {
		streams := make([]string, 0, 2*len(group))
		for _, i := range group {
			streams = append(streams, k.streams[i])
		}
		for range group {
			streams = append(streams, id)
		}
		cmds[g] = pipe.XReadGroup(ctx, &redis.XReadGroupArgs{Group: k.cfg.Group, Consumer: k.cfg.Name,
			Streams: streams, Count: int64(k.cfg.Prefetch), Block: block})
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	var out []Event
	for _, cmd := range cmds {
		res, err := cmd.Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("fleet: read events: %w", err)
		}
		for _, s := range res {
			out = append(out, parseEvents(slices.Index(k.streams, s.Stream), s.Messages)...)
		}
	}
	return out, nil
}

// Ack marks events handled: they are not delivered again.
func (k *Consumer) Ack(ctx context.Context, events ...Event) error {
	if len(events) == 0 {
		return nil
	}
	ids := make(map[int][]string)
	for _, e := range events {
		ids[e.Partition] = append(ids[e.Partition], e.ID)
	}
	pipe := k.c.redis.Pipeline()
	for p, of := range ids {
		if p < 0 || p >= len(k.streams) {
			return fmt.Errorf("fleet: ack events: partition %d of %d", p, len(k.streams))
		}
		pipe.XAck(ctx, k.streams[p], k.cfg.Group, of...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("fleet: ack events: %w", err)
	}
	return nil
}

// parseEvents decodes stream entries. A field that does not parse is left
// zero: the entry is still delivered (and can be acked).
func parseEvents(partition int, msgs []redis.XMessage) []Event {
	out := make([]Event, len(msgs))
	for i, m := range msgs {
		str := func(k string) string { s, _ := m.Values[k].(string); return s }
		num := func(k string) int { n, _ := strconv.Atoi(str(k)); return n }
		out[i] = Event{ID: m.ID, Partition: partition, Shard: num("shard"), Count: num("count"), Seq: num("seq"),
			Session: str("session"), Type: str("type"), Data: json.RawMessage(str("data"))}
	}
	return out
}
