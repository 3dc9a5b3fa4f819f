package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

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

// splitAncestors lists the split shards key descends from, from the
// fleet's layout when the shard's command loop starts (a split after that
// makes new shards, not new ancestors of this one).
func (w *Worker) splitAncestors(ctx context.Context, keys keyspace.Keys, key lease.ShardKey) ([]lease.ShardKey, error) {
	layout, err := lease.LoadLayout(ctx, w.cfg.Redis, keys)
	if err != nil {
		return nil, fmt.Errorf("read the layout for split shards' commands: %w", err)
	}
	return ancestors(layout, key), nil
}

// adoptSplitCommands moves the commands queued for the ancestors of
// run.key to the shards that serve them now. It runs at each poll, so a
// command a sender queued from a layout read before the split is moved too.
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
			if err := moveCommandScript.Run(ctx, w.cfg.Redis, ks, args...).Err(); err != nil {
				return fmt.Errorf("move command %s of split shard %s: %w", m.ID, anc, err)
			}
			for _, t := range targets {
				w.wakeCommands(strconv.Itoa(t.Count) + ":" + strconv.Itoa(t.ID))
			}
		}
	}
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
