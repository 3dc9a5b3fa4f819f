package fleet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// Client sends commands to a fleet and reads their outcomes. It is safe for
// concurrent use.
type Client struct {
	redis redis.UniversalClient
	keys  keyspace.Keys // the fleet-wide keys; per-shard keys come from partitioned
	// poll is how often WaitOutcome and RequestMembers look again.
	poll time.Duration

	mu    sync.Mutex
	parts *keyspace.Keys // the fleet's keys with its partition count, once read
}

// NewClient returns a Client of the fleet whose keys start with prefix (the
// workers' KEY_PREFIX; "" is the default, normalised the same way).
func NewClient(client redis.UniversalClient, prefix string) *Client {
	return &Client{redis: client, keys: keyspace.NewKeys(prefix), poll: 20 * time.Millisecond}
}

// partitioned returns the fleet's keys split into its partitions (read once:
// a fleet's partition count never changes). A fleet that stores no count yet
// gets the default one stored, as its first worker would: 16 on Redis
// Cluster, 1 on one node or Sentinel (a worker started later with another
// PARTITIONS refuses to start, naming it).
func (c *Client) partitioned(ctx context.Context) (keyspace.Keys, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.parts != nil {
		return *c.parts, nil
	}
	k, err := lease.ResolvePartitions(ctx, c.redis, c.keys, 0)
	if err != nil {
		return keyspace.Keys{}, fmt.Errorf("fleet: %w", err)
	}
	c.parts = &k
	return k, nil
}

// Queued is one command as queued: its ID (for Outcome) and its shard.
type Queued struct {
	ID    string
	Shard ShardKey
}

// Send validates cmd, routes it (see Target) and queues it for its shard's
// owner; with ToAll, one copy per shard of the layout. An invalid command or
// a guild no shard serves is a *RejectedError and nothing is queued.
func (c *Client) Send(ctx context.Context, to Target, cmd Command) ([]Queued, error) {
	d, err := compact(cmd.D)
	if err != nil {
		return nil, err
	}
	guild, err := Validate(cmd.Op, d)
	if err != nil {
		return nil, err
	}
	shards, err := c.route(ctx, to, guild)
	if err != nil {
		return nil, err
	}
	deadline, err := c.serverDeadline(ctx, cmd.Deadline)
	if err != nil {
		return nil, err
	}
	keys, err := c.partitioned(ctx)
	if err != nil {
		return nil, err
	}
	queued := make([]Queued, len(shards))
	pipe := c.redis.Pipeline()
	for i, s := range shards {
		queued[i] = Queued{ID: newID(), Shard: s}
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: keys.Commands(s), Values: []any{
			"id", queued[i].ID, "op", int(cmd.Op), "d", string(d), "deadline", deadline}})
		pipe.Publish(ctx, c.keys.CommandChannel(), strconv.Itoa(s.Count)+":"+strconv.Itoa(s.ID))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("fleet: queue command: %w", err)
	}
	return queued, nil
}

// serverDeadline turns a deadline on this machine's clock into Unix ms on
// the Redis server's, which the workers compare it with (0: none).
func (c *Client) serverDeadline(ctx context.Context, deadline time.Time) (int64, error) {
	if deadline.IsZero() {
		return 0, nil
	}
	now, err := c.redis.Time(ctx).Result()
	if err != nil {
		return 0, fmt.Errorf("fleet: read the Redis server's clock for the deadline: %w", err)
	}
	return now.Add(time.Until(deadline)).UnixMilli(), nil
}

func compact(d json.RawMessage) (json.RawMessage, error) {
	var b bytes.Buffer
	if err := json.Compact(&b, d); err != nil {
		return nil, rejected("d is not JSON: %v", err)
	}
	return b.Bytes(), nil
}

// route resolves a target to its shards through the fleet's layout.
func (c *Client) route(ctx context.Context, to Target, guild uint64) ([]ShardKey, error) {
	if to.Shard != nil {
		if err := to.Shard.Validate(); err != nil {
			return nil, rejected("%v", err)
		}
		if guild != 0 && !OnShard(guild, *to.Shard) {
			return nil, rejected("guild %d is not on shard %s", guild, *to.Shard)
		}
		return []ShardKey{*to.Shard}, nil
	}
	if to.All && guild != 0 {
		return nil, rejected("a command for guild %d goes to its shard, not to all", guild)
	}
	layout, err := lease.LoadLayout(ctx, c.redis, c.keys)
	if errors.Is(err, lease.ErrNoLayout) {
		return nil, rejected("the fleet has no layout yet: no shard serves any guild")
	}
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	if to.All {
		return layout.Shards(), nil
	}
	if to.Guild != 0 {
		guild = to.Guild
	}
	if guild == 0 {
		return nil, rejected("no target: give a guild, a shard or all")
	}
	return []ShardKey{layout.ShardFor(guild)}, nil
}

// newID is a command ID: 16 random bytes in hex.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// ErrNoOutcome: the command has no outcome yet (still queued), or its record
// expired.
var ErrNoOutcome = errors.New("fleet: no outcome yet")

// Outcome reads a command's outcome; ErrNoOutcome while it has none. The
// record is in the partition of the command's shard, which the ID does not
// name: every partition is asked, in one pipeline.
func (c *Client) Outcome(ctx context.Context, id string) (Outcome, error) {
	keys, err := c.partitioned(ctx)
	if err != nil {
		return Outcome{}, err
	}
	pipe := c.redis.Pipeline()
	cmds := make([]*redis.StringCmd, keys.Partitions())
	for p := range cmds {
		cmds[p] = pipe.Get(ctx, keys.PartitionCommandOutcome(p, id))
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	for _, cmd := range cmds {
		b, err := cmd.Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return Outcome{}, fmt.Errorf("fleet: read outcome: %w", err)
		}
		var o Outcome
		if err := json.Unmarshal(b, &o); err != nil {
			return Outcome{}, fmt.Errorf("fleet: outcome of %s: %w: %w", id, keyspace.ErrCorrupt, err)
		}
		return o, nil
	}
	return Outcome{}, ErrNoOutcome
}

// WaitOutcome polls until the command has an outcome or ctx ends (bound it).
func (c *Client) WaitOutcome(ctx context.Context, id string) (Outcome, error) {
	t := time.NewTicker(c.poll)
	defer t.Stop()
	for {
		o, err := c.Outcome(ctx, id)
		if !errors.Is(err, ErrNoOutcome) {
			return o, err
		}
		select {
		case <-ctx.Done():
			return Outcome{}, fmt.Errorf("fleet: wait for the outcome of %s: %w", id, ctx.Err())
		case <-t.C:
		}
	}
}

// SetPresence stores the fleet's presence (every later IDENTIFY carries it)
// and queues it as op 3 to every shard of the layout.
func (c *Client) SetPresence(ctx context.Context, p gateway.PresenceUpdate) ([]Queued, error) {
	if p.Activities == nil {
		p.Activities = []gateway.Activity{}
	}
	d, err := json.Marshal(p)
	if err != nil {
		return nil, rejected("presence: %v", err)
	}
	return c.SendPresence(ctx, d)
}

// SendPresence is SetPresence with the presence as op 3's raw d.
func (c *Client) SendPresence(ctx context.Context, d json.RawMessage) ([]Queued, error) {
	d, err := compact(d)
	if err != nil {
		return nil, err
	}
	if _, err := Validate(gateway.OpPresenceUpdate, d); err != nil {
		return nil, err
	}
	if err := c.redis.Set(ctx, c.keys.Presence(), []byte(d), 0).Err(); err != nil {
		return nil, fmt.Errorf("fleet: store presence: %w", err)
	}
	return c.Send(ctx, ToAll(), Command{Op: gateway.OpPresenceUpdate, D: d})
}
