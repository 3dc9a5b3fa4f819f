package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/pkg/fleet"
	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// After a 4011 split nobody owns the split shard again, so commands still
// queued for it would wait forever. The first owner of a child moves them to
// the children that serve their guilds (an op 3 to every child), each entry
// once: the move is one fenced script that takes the entry off the old queue
// only if it is still there.

// moveCommandScript moves one entry from a queue to one or more queues (the
// keys' tail), if it is still in the first, fenced by the mover's lease. The
// args' tail is the entry's field/value pairs. Returns 1 if moved, 0 if gone.
var moveCommandScript = keyspace.NewScript([]string{"lease", "member", "source"},
	[]string{"worker", "token", "entry"}, luaCommandFence+`
if redis.call('XDEL', K_source, A_entry) == 0 then
  return 0
end
for i = KEYS_TAIL, #KEYS do
  redis.call('XADD', KEYS[i], '*', unpack(ARGV, ARGS_TAIL))
end
return 1
`).WithKeysTail()

// loadAncestors lists the split shards run.key descends from, from the
// fleet's layout when the shard's command loop first runs (a split after
// that makes new shards, not new ancestors of this one); a failed read is
// tried again by the next goroutine of the loop.
func (w *Worker) loadAncestors(ctx context.Context, run *shardRun, keys keyspace.Keys) ([]lease.ShardKey, error) {
	c := run.cmd
	c.mu.Lock()
	ancs, loaded := c.ancs, c.ancsLoaded
	c.mu.Unlock()
	if loaded {
		return ancs, nil
	}
	layout, err := lease.LoadLayout(ctx, w.cfg.Redis, keys)
	if err != nil {
		return nil, fmt.Errorf("read the layout for split shards' commands: %w", err)
	}
	ancs = ancestors(layout, run.key)
	c.mu.Lock()
	c.ancs, c.ancsLoaded = ancs, true
	c.mu.Unlock()
	return ancs, nil
}

// adoptsFrom lists the split shards the loop adopts commands from (for the
// worker's sweep).
func (c *commandRun) adoptsFrom() []lease.ShardKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ancs
}

// adoptSplitCommands moves the commands queued for the ancestors of
// run.key to the shards that serve them now. It runs at each round of the
// loop, so a command a sender queued from a layout read before the split is
// moved too (its wake-up for the split shard wakes the shards it became).
func (w *Worker) adoptSplitCommands(ctx context.Context, run *shardRun, keys keyspace.Keys, ancs []lease.ShardKey) error {
	var layout *lease.Layout
	for _, anc := range ancs {
		n, err := w.cfg.Redis.XLen(ctx, keys.Commands(anc)).Result()
		if err != nil {
			return fmt.Errorf("adopt a split shard's commands: %w", err)
		}
		if n == 0 {
			continue
		}
		if layout == nil {
			l, err := lease.LoadLayout(ctx, w.cfg.Redis, keys)
			if err != nil {
				return fmt.Errorf("adopt a split shard's commands: %w", err)
			}
			layout = &l
		}
		if err := w.adoptQueue(ctx, run, keys, *layout, anc); err != nil {
			return err
		}
	}
	return nil
}

// ancestors lists the split shards k descends from, nearest first.
func ancestors(l lease.Layout, k lease.ShardKey) []lease.ShardKey {
	var out []lease.ShardKey
	for {
		found := false
		for _, s := range l.Splits {
			if s.Key.Count*s.Factor == k.Count && k.ID%s.Key.Count == s.Key.ID {
				k, found = s.Key, true
				out = append(out, k)
				break
			}
		}
		if !found {
			return out
		}
	}
}

// adoptQueue moves every entry of anc's queue.
func (w *Worker) adoptQueue(ctx context.Context, run *shardRun, keys keyspace.Keys, l lease.Layout, anc lease.ShardKey) error {
	src := keys.Commands(anc)
	for {
		msgs, err := w.cfg.Redis.XRangeN(ctx, src, "-", "+", commandBatch).Result()
		if err != nil || len(msgs) == 0 {
			return err
		}
		for _, m := range msgs {
			targets := splitTargets(l, anc, run.key, m.Values)
			ks := []string{keys.Lease(run.key), keys.ShardMember(run.key, run.lease.Owner()), src}
			args := []any{run.lease.Owner(), strconv.FormatUint(run.lease.Token(), 10), m.ID}
			for _, t := range targets {
				ks = append(ks, keys.Commands(t))
			}
			for f, v := range m.Values {
				args = append(args, f, v)
			}
			if err := w.moveCommand(ctx, run, keys, anc, ks, args, m); err != nil {
				return fmt.Errorf("move command %s of split shard %s: %w", m.ID, anc, err)
			}
			for _, t := range targets {
				w.wakeCommands(strconv.Itoa(t.Count) + ":" + strconv.Itoa(t.ID))
			}
		}
	}
}

// commandMoveTTL bounds how long a mover that crashed keeps the others from
// moving an entry (see moveCommand).
const commandMoveTTL = 30 * time.Second

// moveCommand moves entry m of anc's queue by moveCommandScript (keys ks,
// args args) when every key is in one Redis Cluster slot. A split shard's
// heirs may be in other partitions than it (shard s is in partition s mod
// P): then the mover marks the entry (SET NX in the source's slot: the heirs'
// owners all adopt, one at a time), checks its lease, adds the entry to each
// target queue and deletes it from the source. A crash between the adds and
// the delete queues it twice once the mark expires: commands are delivered
// at least once anyway.
func (w *Worker) moveCommand(ctx context.Context, run *shardRun, keys keyspace.Keys, anc lease.ShardKey, ks []string, args []any, m redis.XMessage) error {
	if oneSlot(ks) {
		return moveCommandScript.Run(ctx, w.cfg.Redis, ks, args...).Err()
	}
	mine, err := w.cfg.Redis.SetNX(ctx, keys.CommandMove(anc, m.ID), run.lease.Owner(), commandMoveTTL).Result()
	if err != nil || !mine {
		return err // another mover has it
	}
	if ok, err := run.lease.Valid(ctx); err != nil || !ok {
		return fmt.Errorf("lease not valid (%v): %w", err, lease.ErrFenced)
	}
	src, targets := ks[2], ks[3:]
	pipe := w.cfg.Redis.Pipeline()
	for _, t := range targets {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: t, Values: m.Values})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	return w.cfg.Redis.XDel(ctx, src, m.ID).Err()
}

// oneSlot reports whether keys all hash to one Redis Cluster slot.
func oneSlot(keys []string) bool {
	for _, k := range keys[1:] {
		if keyspace.Slot(k) != keyspace.Slot(keys[0]) {
			return false
		}
	}
	return true
}

// splitTargets is where a command queued for the split shard anc goes: the
// shard serving its guild, every current shard anc became (op 3), or here
// (a command the owner will reject as it is).
func splitTargets(l lease.Layout, anc, here lease.ShardKey, v map[string]any) []lease.ShardKey {
	op, _ := strconv.Atoi(fmt.Sprint(v["op"]))
	d, _ := v["d"].(string)
	guild, err := fleet.Validate(gateway.Opcode(op), json.RawMessage(d))
	if err != nil {
		return []lease.ShardKey{here}
	}
	if guild != 0 {
		return []lease.ShardKey{l.ShardFor(guild)}
	}
	var out []lease.ShardKey
	for _, s := range l.Shards() {
		if s.Count%anc.Count == 0 && s.ID%anc.Count == anc.ID && s.Count > anc.Count {
			out = append(out, s)
		}
	}
	return out
}
