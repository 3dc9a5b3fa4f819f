package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/pkg/fleet"
	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// Gateway commands queued in Redis (docs/commands.md): each shard's owner
// sends its shard's queue, in order, through the gateway's send limiter. A
// command leaves the queue only with its outcome, in one fenced script, after
// it was sent (or expired, or rejected): a crash between sending and
// recording leaves it queued, so the next owner sends it again (at least
// once); a worker whose lease ended can neither claim nor record one.
// "Sent" is recorded once the write completed; the owner keeps the command
// until Discord ACKs a heartbeat written after it (gateway.Receipt), and if
// the connection ends first it sends it again on the next one, before
// anything newer (resendUnconfirmed), or, if its loop stops first (handoff,
// lost lease, split), queues it again for the next owner (requeueUnconfirmed).

const (
	// commandBatch is how many queued commands one claim reads.
	commandBatch = 16
	// commandPoll bounds how long a queued command waits for its owner to
	// look when no wake-up reached it (a sender that does not PUBLISH).
	commandPoll = time.Second
	// commandRetry is how soon a command the shard could not send yet (not
	// READY, reconnecting) is tried again.
	commandRetry = 100 * time.Millisecond
	// commandOutcomeTTL is how long an outcome record is kept.
	commandOutcomeTTL = 24 * time.Hour
	// commandFinishTimeout bounds recording an outcome; it outlives a stop
	// of the loop, so a command sent just before a handoff is recorded, not
	// sent again by the next owner.
	commandFinishTimeout = 2 * time.Second
)

// luaCommandFence refuses (FENCED) a command script of a worker whose lease
// on the shard is gone (keyspace.LuaLeaseValid: keys lease and member, args
// worker and token).
const luaCommandFence = keyspace.LuaLeaseValid + `
if not valid then return refuse('FENCED', 'lease not held with this token') end
`

// claimCommandsScript reads the head of a shard's queue, fenced: only the
// lease holder may claim commands for sending. Returns {server ms, XRANGE
// entries}.
var claimCommandsScript = keyspace.NewScript([]string{"lease", "member", "queue"},
	[]string{"worker", "token", "count"}, luaCommandFence+`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return {now, redis.call('XRANGE', K_queue, '-', '+', 'COUNT', A_count)}
`)

// finishCommandScript removes one command from its queue and records its
// outcome (with the server's time), fenced. A command already gone (a
// previous call did it) records nothing. Returns 1, or 0 when gone.
var finishCommandScript = keyspace.NewScript([]string{"lease", "member", "queue", "outcome"},
	[]string{"worker", "token", "entry", "outcome", "ttl_ms"}, luaCommandFence+`
if redis.call('XDEL', K_queue, A_entry) == 0 then
  return 0
end
local t = redis.call('TIME')
local o = cjson.decode(A_outcome)
o.at = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', K_outcome, cjson.encode(o), 'PX', A_ttl_ms)
return 1
`)

// commandRun is a shard's command loop.
type commandRun struct {
	wake chan struct{} // buffer 1: the queue has a new command
	stop context.CancelFunc
	done chan struct{}
	// unconfirmed are the commands sent (and recorded so) that Discord has
	// not yet shown it read, oldest first; the loop's goroutine only.
	unconfirmed []sentCommand
}

// sentCommand is a command written on a connection, with the receipt that
// tells whether Discord read it.
type sentCommand struct {
	c       queuedCommand
	receipt gateway.Receipt
}

// queuedCommand is one queue entry as claimed.
type queuedCommand struct {
	entry    string // stream entry ID
	id       string
	op       gateway.Opcode
	d        json.RawMessage
	deadline time.Time // local clock; zero: none
	serverMS int64     // the deadline as queued: Unix ms on Redis's clock; 0: none
	bad      error     // malformed entry: rejected as it is
}

// startCommands starts the shard's command loop; it ends with the lease or
// stopCommands.
func (w *Worker) startCommands(run *shardRun) {
	ctx, stop := context.WithCancel(run.lease.Context())
	run.cmd = &commandRun{wake: make(chan struct{}, 1), stop: stop, done: make(chan struct{})}
	w.shardWG.Go(func() {
		defer close(run.cmd.done)
		w.runCommands(ctx, run)
	})
}

// stopCommands stops the loop and waits until its command in flight, if any,
// is sent and recorded (bounded by ctx): nothing is sent on the shard after a
// handoff began, and nothing sent before it is sent again by the next owner.
func (w *Worker) stopCommands(ctx context.Context, run *shardRun) {
	run.cmd.stop()
	select {
	case <-run.cmd.done:
	case <-ctx.Done():
	}
}

// runCommands sends the shard's queue until ctx ends.
func (w *Worker) runCommands(ctx context.Context, run *shardRun) {
	keys := w.keys
	ancs, err := w.splitAncestors(ctx, keys, run.key)
	if err != nil && ctx.Err() == nil {
		w.commandError(run, err)
	}
	defer w.requeueUnconfirmed(run, keys)
	poll := time.NewTimer(0)
	defer poll.Stop()
	// check runs while commands are unconfirmed: one whose connection ended
	// is sent again once the shard is back, without waiting for the poll.
	check := time.NewTimer(commandRetry)
	defer check.Stop()
	for {
		var checkC <-chan time.Time
		if len(run.cmd.unconfirmed) > 0 {
			checkC = check.C
		}
		select {
		case <-ctx.Done():
			return
		case <-checkC:
			w.resendUnconfirmed(ctx, run)
			resetTimer(check, commandRetry)
			continue
		case <-run.cmd.wake:
		case <-poll.C:
		}
		err := w.adoptSplitCommands(ctx, run, keys, ancs)
		next := commandPoll
		if err == nil {
			next, err = w.sendQueued(ctx, run, keys)
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.commandError(run, err)
		}
		resetTimer(poll, next)
		resetTimer(check, commandRetry)
	}
}

// commandError reports a failed round of the command loop (retried at the
// next poll).
func (w *Worker) commandError(run *shardRun, err error) {
	w.m.redisErrors.Add(1)
	w.log.Warn("gateway commands", "shard_id", run.key.ID, "shard_count", run.key.Count, "err", err)
}

func resetTimer(t *time.Timer, d time.Duration) {
	t.Stop()
	select {
	case <-t.C:
	default:
	}
	t.Reset(d)
}

// sendQueued claims the head of the queue and sends it in order. It returns
// when to look again: at once after a full batch, soon when a command could
// not be sent yet (nothing after it goes first), else at the next poll.
func (w *Worker) sendQueued(ctx context.Context, run *shardRun, keys keyspace.Keys) (next time.Duration, err error) {
	if !w.resendUnconfirmed(ctx, run) {
		return commandRetry, nil
	}
	batch, err := w.claimCommands(ctx, run, keys)
	if err != nil || len(batch) == 0 {
		return commandPoll, err
	}
	for _, c := range batch {
		out, sent := w.deliver(ctx, run, c)
		if !sent {
			return commandRetry, nil
		}
		if err := w.finishCommand(ctx, run, keys, c, out); err != nil {
			return commandPoll, err
		}
	}
	if len(batch) == commandBatch {
		return 0, nil
	}
	return commandPoll, nil
}

// claimCommands reads up to commandBatch queued commands, fenced.
func (w *Worker) claimCommands(ctx context.Context, run *shardRun, keys keyspace.Keys) ([]queuedCommand, error) {
	l := run.lease
	res, err := claimCommandsScript.Run(ctx, w.cfg.Redis, []string{keys.Lease(run.key), keys.ShardMember(run.key, l.Owner()),
		keys.Commands(run.key)}, l.Owner(), strconv.FormatUint(l.Token(), 10), commandBatch).Slice()
	if err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	if len(res) != 2 {
		return nil, fmt.Errorf("claim: %w: reply of %d parts", keyspace.ErrCorrupt, len(res))
	}
	serverNow, _ := res[0].(int64)
	entries, _ := res[1].([]any)
	localNow := time.Now()
	out := make([]queuedCommand, 0, len(entries))
	for _, e := range entries {
		out = append(out, parseQueued(e, serverNow, localNow))
	}
	return out, nil
}

// parseQueued decodes one XRANGE entry; a deadline in server ms becomes a
// local time by the offset between the two clocks at the claim.
func parseQueued(e any, serverNow int64, localNow time.Time) queuedCommand {
	pair, _ := e.([]any)
	var c queuedCommand
	if len(pair) == 2 {
		c.entry, _ = pair[0].(string)
	}
	if c.entry == "" { // never from Redis
		c.bad = errors.New("malformed queue entry")
		return c
	}
	fields, _ := pair[1].([]any)
	var op, deadline string
	for i := 0; i+1 < len(fields); i += 2 {
		k, _ := fields[i].(string)
		v, _ := fields[i+1].(string)
		switch k {
		case "id":
			c.id = v
		case "op":
			op = v
		case "d":
			c.d = json.RawMessage(v)
		case "deadline":
			deadline = v
		}
	}
	n, err := strconv.Atoi(op)
	if err != nil {
		c.bad = fmt.Errorf("op %q is not a number", op)
	}
	c.op = gateway.Opcode(n)
	if ms, err := strconv.ParseInt(deadline, 10, 64); err == nil && ms > 0 {
		c.serverMS = ms
		c.deadline = localNow.Add(time.Duration(ms-serverNow) * time.Millisecond)
	} else if deadline != "" && deadline != "0" {
		c.bad = fmt.Errorf("deadline %q is not Unix ms", deadline)
	}
	if !commandIDPattern.MatchString(c.id) {
		if c.id != "" {
			c.bad = fmt.Errorf("id %q: want 1-64 of A-Z a-z 0-9 - _", c.id)
		}
		c.id = c.entry // the outcome is then under the entry ID
		// Redis's entry IDs (ms-seq) always fit; any other cannot name a key.
		if c.bad == nil && !commandIDPattern.MatchString(c.id) {
			c.bad = fmt.Errorf("queue entry ID %q is malformed", c.entry)
		}
	}
	return c
}

// commandIDPattern is a valid command ID: it names a key, so it must not
// hold a hash tag or a separator.
var commandIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// deliver sends one command. sent is false when it must be tried again
// (the shard is not READY here yet, a write failed, or ctx ended); else out
// is its outcome.
func (w *Worker) deliver(ctx context.Context, run *shardRun, c queuedCommand) (out fleet.Outcome, sent bool) {
	out = fleet.Outcome{ID: c.id, Shard: run.key.ID, Count: run.key.Count}
	if c.bad == nil {
		var guild uint64
		guild, c.bad = fleet.Validate(c.op, c.d)
		if c.bad == nil && guild != 0 && !fleet.OnShard(guild, run.key) {
			c.bad = fmt.Errorf("guild %d is not on shard %s", guild, run.key)
		}
	}
	if c.bad != nil {
		var rej *fleet.RejectedError
		out.State, out.Reason = fleet.StateRejected, c.bad.Error()
		if errors.As(c.bad, &rej) {
			out.Reason = rej.Reason
		}
		return out, true
	}
	if pastDeadline(c) {
		out.State = fleet.StateExpired
		return out, true
	}
	g, receipt, err := w.send(ctx, run, c)
	switch {
	case err == nil:
		run.cmd.unconfirmed = append(run.cmd.unconfirmed, sentCommand{c: c, receipt: receipt})
		out.State = fleet.StateSent
		if s := g.SessionID(); s != nil {
			out.Session = *s
		}
		return out, true
	case errors.Is(err, gateway.ErrPayloadTooLarge):
		out.State, out.Reason = fleet.StateRejected, "payload over 4096 bytes"
		return out, true
	case ctx.Err() == nil && pastDeadline(c):
		out.State = fleet.StateExpired // its deadline passed while the send limiter held it
		return out, true
	}
	return out, false
}

// errNotSendable: the shard is not READY here (yet), or the loop is stopping.
var errNotSendable = errors.New("shard not ready on this worker")

// send writes c on the shard's gateway within c's deadline and returns the
// gateway with the command's receipt.
func (w *Worker) send(ctx context.Context, run *shardRun, c queuedCommand) (gateway.Gateway, gateway.Receipt, error) {
	g := w.mgr.Shard(run.key.ID)
	if g == nil || g.ShardCount() != run.key.Count || ctx.Err() != nil {
		// ctx: the send limiter does not look at it when a slot is free,
		// and a lease that ended (or a handoff that began) sends nothing.
		return nil, gateway.Receipt{}, errNotSendable
	}
	sendCtx, cancel := ctx, context.CancelFunc(func() {})
	if !c.deadline.IsZero() {
		sendCtx, cancel = context.WithDeadline(ctx, c.deadline)
	}
	defer cancel()
	r, err := g.SendTracked(sendCtx, c.op, c.d)
	return g, r, err
}

func pastDeadline(c queuedCommand) bool {
	return !c.deadline.IsZero() && !time.Now().Before(c.deadline)
}

// resendUnconfirmed forgets the commands Discord has shown it read, and
// sends again, in order, those whose connection ended before it did: a
// write only hands a command to the kernel, and a connection that drops
// may take it along (at least once: Discord may have read it). A command
// past its deadline is not sent again. It returns false when one could not
// be sent yet (the shard is reconnecting): nothing after it may go first.
func (w *Worker) resendUnconfirmed(ctx context.Context, run *shardRun) bool {
	cmds := run.cmd.unconfirmed
	kept := cmds[:0]
	resent := 0
	defer func() {
		clear(cmds[len(kept):])
		run.cmd.unconfirmed = kept
		if resent > 0 {
			w.log.Info("sent again the commands a dropped connection took without Discord confirming them",
				"shard_id", run.key.ID, "shard_count", run.key.Count, "commands", resent)
		}
	}()
	for i, s := range cmds {
		read, err := s.receipt.Read()
		switch {
		case read, err != nil && pastDeadline(s.c):
			continue
		case err == nil:
			kept = append(kept, s)
			continue
		}
		_, r, err := w.send(ctx, run, s.c)
		if err != nil {
			kept = append(kept, cmds[i:]...)
			return false
		}
		resent++
		kept = append(kept, sentCommand{c: s.c, receipt: r})
	}
	return true
}

// requeueUnconfirmed queues again, when the loop stops (handoff, lost
// lease, a split that ends the shard), the commands whose connection ended
// before Discord confirmed them: this owner can no longer send them, the
// shard's next owner (or, after a split, its children's) will. They go to
// the end of the queue. Commands on a connection still open are not: it is
// closed after them, and Discord reads them before the close.
func (w *Worker) requeueUnconfirmed(run *shardRun, keys keyspace.Keys) {
	ctx, cancel := context.WithTimeout(context.Background(), commandFinishTimeout)
	defer cancel()
	pipe := w.cfg.Redis.Pipeline()
	n := 0
	for _, s := range run.cmd.unconfirmed {
		if _, err := s.receipt.Read(); err == nil || pastDeadline(s.c) {
			continue
		}
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: keys.Commands(run.key), Values: []any{
			"id", s.c.id, "op", int(s.c.op), "d", string(s.c.d), "deadline", s.c.serverMS}})
		n++
	}
	if n == 0 {
		return
	}
	pipe.Publish(ctx, keys.CommandChannel(), strconv.Itoa(run.key.Count)+":"+strconv.Itoa(run.key.ID))
	if _, err := pipe.Exec(ctx); err != nil {
		w.log.Error("commands a dropped connection took unconfirmed could not be queued again: they may be lost",
			"shard_id", run.key.ID, "shard_count", run.key.Count, "commands", n, "err", err)
		return
	}
	w.log.Info("queued again the commands a dropped connection took unconfirmed, for the shard's next owner",
		"shard_id", run.key.ID, "shard_count", run.key.Count, "commands", n)
}

// newCommandOutcomes registers shardfleet_commands_total{outcome}: the
// gateway commands this worker recorded as sent, expired or rejected. Every
// outcome starts at 0.
func newCommandOutcomes(reg prometheus.Registerer) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "shardfleet", Name: "commands_total",
		Help: "Gateway commands from the fleet's queues, by outcome (sent, expired, rejected)."}, []string{"outcome"})
	for _, o := range []string{fleet.StateSent, fleet.StateExpired, fleet.StateRejected} {
		v.WithLabelValues(o)
	}
	reg.MustRegister(v)
	return v
}

// finishCommand records a command's outcome and takes it off the queue.
func (w *Worker) finishCommand(ctx context.Context, run *shardRun, keys keyspace.Keys, c queuedCommand, out fleet.Outcome) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commandFinishTimeout)
	defer cancel()
	b, _ := json.Marshal(out) // plain struct: cannot fail
	l := run.lease
	recorded, err := finishCommandScript.Run(ctx, w.cfg.Redis, []string{keys.Lease(run.key), keys.ShardMember(run.key, l.Owner()),
		keys.Commands(run.key), keys.CommandOutcome(run.key, c.id)}, l.Owner(), strconv.FormatUint(l.Token(), 10),
		c.entry, b, commandOutcomeTTL.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("record outcome of %s: %w", c.id, err)
	}
	if recorded == 1 {
		w.m.commands.WithLabelValues(out.State).Inc()
	}
	return nil
}

// commandWakes subscribes to the fleet's command channel and wakes the loop
// of the shard a message names, until ctx ends. Without it (Redis down,
// resubscribing) every loop still polls each commandPoll.
func (w *Worker) commandWakes(ctx context.Context) {
	sub := w.cfg.Redis.Subscribe(ctx, keyspace.NewKeys(w.cfg.KeyPrefix).CommandChannel())
	defer sub.Close()
	ch := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-ch:
			if !ok {
				return
			}
			w.wakeCommands(msg.Payload)
		}
	}
}

// wakeCommands wakes the command loop of the shard "count:id" names, if it
// is here.
func (w *Worker) wakeCommands(name string) {
	count, id, ok := strings.Cut(name, ":")
	c, err1 := strconv.Atoi(count)
	i, err2 := strconv.Atoi(id)
	if !ok || err1 != nil || err2 != nil {
		return
	}
	w.mu.RLock()
	run := w.shards[keyspace.ShardKey{ID: i, Count: c}]
	w.mu.RUnlock()
	if run == nil || run.cmd == nil {
		return
	}
	select {
	case run.cmd.wake <- struct{}{}:
	default:
	}
}
