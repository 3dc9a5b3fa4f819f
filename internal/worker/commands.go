package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/pkg/fleet"
	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// Gateway commands queued in Redis (docs/commands.md): each shard's owner
// sends its shard's queue, in order, through the gateway's send limiter. A
// command leaves the queue only once its fate is certain, in a fenced
// script: expired or rejected at once, with its outcome; sent once Discord
// ACKed a heartbeat written after it (gateway.Receipt), its `sent` outcome
// recorded at the write already. Until then it is in flight: it stays at the
// head of the queue, so an owner that dies (kill -9) leaves it for the next
// owner, who claims from the head and sends it again before anything newer
// (at least once, in order); the owner itself never claims it twice, sends
// it again if its connection ended first (settleInFlight), and records the
// session it last went out on. A worker whose lease ended can neither claim,
// record nor remove one.
//
// No extra heartbeat is sent to confirm a burst sooner: the command is on the
// wire at once and its outcome readable, and the wait (up to a heartbeat
// interval) only bounds what a crash sends twice; an op 1 of our own would
// cost a send slot per burst, and Discord documents heartbeats on the
// interval or when it asks (op 1), nothing else.

const (
	// commandBatch is how many queued commands one claim reads.
	commandBatch = 16
	// commandRetry is how soon a command the shard could not send yet (not
	// READY, reconnecting) is tried again, and how often the commands in
	// flight are looked at.
	commandRetry = 100 * time.Millisecond
	// commandErrorRetry is how soon a round that failed (Redis) is tried
	// again.
	commandErrorRetry = time.Second
	// commandIdle: the queue is drained and nothing is in flight; the loop
	// ends until a wake-up.
	commandIdle time.Duration = -1
	// commandOutcomeTTL is how long an outcome record is kept.
	commandOutcomeTTL = 24 * time.Hour
	// commandFinishTimeout bounds recording an outcome or removing commands
	// from the queue; it outlives a stop of the loop, so a command sent just
	// before a handoff is recorded and removed, not sent again by the next
	// owner.
	commandFinishTimeout = 2 * time.Second
)

// luaCommandFence refuses (FENCED) a command script of a worker whose lease
// on the shard is gone (keyspace.LuaLeaseValid: keys lease and member, args
// worker and token).
const luaCommandFence = keyspace.LuaLeaseValid + `
if not valid then return refuse('FENCED', 'lease not held with this token') end
`

// claimCommandsScript reads the head of a shard's queue, from a start ID,
// fenced: only the lease holder may claim commands for sending. Returns
// {server ms, XRANGE entries}.
var claimCommandsScript = keyspace.NewScript([]string{"lease", "member", "queue"},
	[]string{"worker", "token", "count", "start"}, luaCommandFence+`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return {now, redis.call('XRANGE', K_queue, A_start, '+', 'COUNT', A_count)}
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

// recordSentScript records a command's `sent` outcome (with the server's
// time), fenced, leaving the command queued until Discord confirms it. The
// fence reads its names by position (lease, member; worker, token first).
var recordSentScript = keyspace.NewScript([]string{"lease", "member", "outcome"},
	[]string{"worker", "token", "outcome", "ttl_ms"}, luaCommandFence+`
local t = redis.call('TIME')
local o = cjson.decode(A_outcome)
o.at = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', K_outcome, cjson.encode(o), 'PX', A_ttl_ms)
return 1
`)

// removeSentScript takes sent commands off the queue, fenced.
// ARGS_TAIL: their entry IDs. Returns how many were still queued.
var removeSentScript = keyspace.NewScript([]string{"lease", "member", "queue"},
	[]string{"worker", "token"}, luaCommandFence+`
return redis.call('XDEL', K_queue, unpack(ARGV, ARGS_TAIL))
`)

// commandRun is a shard's command loop. Its goroutine runs only while
// the shard has commands to send or in flight: a wake-up (pub/sub, the
// worker's sweep, the lease won) starts it, and it ends once the queue is
// drained and Discord confirmed everything it sent, so an idle shard costs
// Redis nothing and holds no goroutine for its commands.
type commandRun struct {
	ctx  context.Context // ends with the lease or stopCommands
	stop context.CancelFunc
	wake chan struct{} // buffer 1: the queue has a new command

	mu      sync.Mutex
	running bool          // a loop goroutine is running
	done    chan struct{} // closed when the last goroutine started ends; nil before
	// ancs are the split shards this shard descends from (their queues are
	// adopted); ancsLoaded once read from the layout.
	ancs       []lease.ShardKey
	ancsLoaded bool

	// inFlight are the commands this run sent that are still queued, in
	// queue order: not claimed again, removed once Discord read them; the
	// running loop goroutine's only (handed to the next one through mu).
	inFlight []sentCommand
}

// sentCommand is a command written on a connection, with the receipt that
// tells whether Discord read it and the outcome to record.
type sentCommand struct {
	c        queuedCommand
	receipt  gateway.Receipt
	out      fleet.Outcome
	recorded bool // out is in Redis
	done     bool // to remove from the queue
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

// startCommands sets up the shard's command loop and runs a first round
// (commands queued before this worker won the lease); it ends with the
// lease or stopCommands.
func (w *Worker) startCommands(run *shardRun) {
	ctx, stop := context.WithCancel(run.lease.Context())
	run.cmd = &commandRun{ctx: ctx, stop: stop, wake: make(chan struct{}, 1)}
	w.wakeRun(run)
}

// wakeRun has the shard's loop look at its queue: it wakes the running
// goroutine, or starts one.
func (w *Worker) wakeRun(run *shardRun) {
	c := run.cmd
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil {
		return
	}
	if c.running {
		select {
		case c.wake <- struct{}{}:
		default:
		}
		return
	}
	c.running, c.done = true, make(chan struct{})
	done := c.done
	go func() {
		defer close(done)
		w.runCommands(run)
	}()
}

// stopCommands stops the loop and waits until its command in flight, if any,
// is sent and recorded (bounded by ctx): nothing is sent on the shard after a
// handoff began, and nothing sent before it is sent again by the next owner.
// stopShard calls it once the lease ended, so no loop outlives its shard.
func (w *Worker) stopCommands(ctx context.Context, run *shardRun) {
	c := run.cmd
	c.mu.Lock()
	c.stop()
	done := c.done
	c.mu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// runCommands sends the shard's queue until it is drained and nothing is in
// flight, or the loop's ctx ends (then it releases what is in flight).
func (w *Worker) runCommands(run *shardRun) {
	if !w.sendUntilIdle(run) {
		w.releaseInFlight(run, w.keys)
	}
}

// sendUntilIdle runs rounds of the loop. true: the queue is drained, nothing
// is in flight and the goroutine ended (the next one owns run.cmd's state
// from then on); false: ctx ended.
func (w *Worker) sendUntilIdle(run *shardRun) bool {
	ctx, keys := run.cmd.ctx, w.keys
	ancs, err := w.loadAncestors(ctx, run, keys)
	if err != nil && ctx.Err() == nil {
		w.commandError(run, err)
	}
	for {
		err := w.adoptSplitCommands(ctx, run, keys, ancs)
		next := commandErrorRetry
		if err == nil {
			next, err = w.sendQueued(ctx, run, keys)
		}
		if ctx.Err() != nil {
			return false
		}
		if err != nil {
			w.commandError(run, err)
			next = commandErrorRetry
		}
		if next == commandIdle && len(run.cmd.inFlight) == 0 {
			if run.cmd.end() {
				return true
			}
			continue // woken meanwhile: end took the wake-up
		}
		if !w.waitCommands(ctx, run, keys, next) {
			return false
		}
	}
}

// end ends the running goroutine unless a wake-up came meanwhile (false:
// run another round).
func (c *commandRun) end() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.wake:
		return false
	default:
	}
	c.running = false
	return true
}

// waitCommands waits until the next round: after next (commandIdle: no
// timer), at a wake-up, or once the commands in flight are settled, which
// it does every commandRetry meanwhile (one Discord confirmed leaves the
// queue, one whose connection ended is sent again once the shard is back).
// false: ctx ended.
func (w *Worker) waitCommands(ctx context.Context, run *shardRun, keys keyspace.Keys, next time.Duration) bool {
	var due <-chan time.Time
	if next != commandIdle {
		t := time.NewTimer(next)
		defer t.Stop()
		due = t.C
	}
	check := time.NewTicker(commandRetry)
	defer check.Stop()
	for {
		var checkC <-chan time.Time
		if len(run.cmd.inFlight) > 0 {
			checkC = check.C
		}
		select {
		case <-ctx.Done():
			return false
		case <-checkC:
			// An error here (Redis) is reported by the next round, which
			// settles first too.
			_, _ = w.settleInFlight(ctx, run, keys)
			if len(run.cmd.inFlight) == 0 && next == commandIdle {
				return true
			}
		case <-run.cmd.wake:
			return true
		case <-due:
			return true
		}
	}
}

// commandError reports a failed round of the command loop (retried after
// commandErrorRetry).
func (w *Worker) commandError(run *shardRun, err error) {
	w.m.redisErrors.Add(1)
	w.log.Warn("gateway commands", "shard_id", run.key.ID, "shard_count", run.key.Count, "err", err)
}

// sendQueued claims the head of the queue and sends it in order. It returns
// when to look again: at once after a full batch, soon when a command could
// not be sent yet (nothing after it goes first), else at the next wake-up
// (commandIdle).
func (w *Worker) sendQueued(ctx context.Context, run *shardRun, keys keyspace.Keys) (next time.Duration, err error) {
	if ok, err := w.settleInFlight(ctx, run, keys); err != nil {
		return commandErrorRetry, err
	} else if !ok {
		return commandRetry, nil
	}
	batch, err := w.claimCommands(ctx, run, keys)
	if err != nil || len(batch) == 0 {
		return commandIdle, err
	}
	for _, c := range batch {
		out, receipt, sent := w.deliver(ctx, run, c)
		switch {
		case !sent:
			return commandRetry, nil
		case out.State == fleet.StateSent:
			err = w.recordSent(ctx, run, keys, c, out, receipt)
		case out.State == fleet.StateExpired:
			err = w.expire(ctx, run, keys, c, out)
		default:
			err = w.finishCommand(ctx, run, keys, c, out)
		}
		if err != nil {
			return commandErrorRetry, err
		}
	}
	if len(batch) == commandBatch {
		return 0, nil
	}
	return commandIdle, nil
}

// claimCommands reads up to commandBatch queued commands not in flight,
// fenced. Those in flight are at the head of the queue (claimed first, in
// order; what was claimed with them and not sent left the queue, or stopped
// the batch), so the claim starts after the last of them: reading them again
// would cost a heartbeat interval's worth of entries per claim.
func (w *Worker) claimCommands(ctx context.Context, run *shardRun, keys keyspace.Keys) ([]queuedCommand, error) {
	l := run.lease
	start := "-"
	if n := len(run.cmd.inFlight); n > 0 {
		start = "(" + run.cmd.inFlight[n-1].c.entry
	}
	res, err := claimCommandsScript.Run(ctx, w.cfg.Redis, []string{keys.Lease(run.key), keys.ShardMember(run.key, l.Owner()),
		keys.Commands(run.key)}, l.Owner(), strconv.FormatUint(l.Token(), 10), commandBatch, start).Slice()
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
// is its outcome, and receipt, when out is `sent`, tells when Discord read it.
func (w *Worker) deliver(ctx context.Context, run *shardRun, c queuedCommand) (out fleet.Outcome, receipt gateway.Receipt, sent bool) {
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
		return out, receipt, true
	}
	if pastDeadline(c) {
		out.State = fleet.StateExpired
		return out, receipt, true
	}
	g, receipt, err := w.send(ctx, run, c)
	switch {
	case err == nil:
		out.State, out.Session = fleet.StateSent, sessionOf(g)
		return out, receipt, true
	case errors.Is(err, gateway.ErrPayloadTooLarge):
		out.State, out.Reason = fleet.StateRejected, "payload over 4096 bytes"
		return out, receipt, true
	case ctx.Err() == nil && pastDeadline(c):
		out.State = fleet.StateExpired // its deadline passed while the send limiter held it
		return out, receipt, true
	}
	return out, receipt, false
}

// sessionOf is the Discord session g is on, or "".
func sessionOf(g gateway.Gateway) string {
	if s := g.SessionID(); s != nil {
		return *s
	}
	return ""
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

// recordSent records c's `sent` outcome and keeps c in flight until Discord
// read it. If recording fails, settleInFlight records it later.
func (w *Worker) recordSent(ctx context.Context, run *shardRun, keys keyspace.Keys, c queuedCommand, out fleet.Outcome, r gateway.Receipt) error {
	run.cmd.inFlight = append(run.cmd.inFlight, sentCommand{c: c, receipt: r, out: out})
	return w.recordInFlight(ctx, run, keys)
}

// settleInFlight does what the commands in flight need: it marks done
// those Discord read (and those whose connection ended past their
// deadline: not sent again), sends again, in order, those whose connection
// ended before Discord read them (a write only hands a command to the
// kernel, and a connection that drops may take it along), records the
// outcomes not yet recorded, and takes the done ones off the queue. ok is
// false when one could not be sent again yet (the shard is reconnecting):
// nothing after it may go first.
func (w *Worker) settleInFlight(ctx context.Context, run *shardRun, keys keyspace.Keys) (ok bool, err error) {
	ok = w.resendUnconfirmed(ctx, run)
	if err := w.recordInFlight(ctx, run, keys); err != nil {
		return ok, err
	}
	return ok, w.removeDone(ctx, run, keys)
}

// resendUnconfirmed marks done the commands in flight Discord read, or
// whose connection ended past their deadline, and sends again those whose
// connection ended first, until one cannot be (false). A command sent
// again records the session it went out on.
func (w *Worker) resendUnconfirmed(ctx context.Context, run *shardRun) bool {
	resent := 0
	defer func() {
		if resent > 0 {
			w.log.Info("sent again the commands a dropped connection took without Discord confirming them",
				"shard_id", run.key.ID, "shard_count", run.key.Count, "commands", resent)
		}
	}()
	for i := range run.cmd.inFlight {
		s := &run.cmd.inFlight[i]
		if s.done {
			continue
		}
		read, err := s.receipt.Read()
		if read || err != nil && pastDeadline(s.c) {
			s.done = true
			continue
		}
		if err == nil {
			continue
		}
		g, r, err := w.send(ctx, run, s.c)
		if err != nil {
			return false
		}
		resent++
		s.receipt, s.out.Session, s.recorded = r, sessionOf(g), false
	}
	return true
}

// recordInFlight records the outcomes of the commands in flight not yet
// recorded.
func (w *Worker) recordInFlight(ctx context.Context, run *shardRun, keys keyspace.Keys) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commandFinishTimeout)
	defer cancel()
	l := run.lease
	for i := range run.cmd.inFlight {
		s := &run.cmd.inFlight[i]
		if s.recorded {
			continue
		}
		b, _ := json.Marshal(s.out) // plain struct: cannot fail
		err := recordSentScript.Run(ctx, w.cfg.Redis, []string{keys.Lease(run.key), keys.ShardMember(run.key, l.Owner()),
			keys.CommandOutcome(run.key, s.c.id)}, l.Owner(), strconv.FormatUint(l.Token(), 10), b,
			commandOutcomeTTL.Milliseconds()).Err()
		if err != nil {
			return fmt.Errorf("record outcome of %s: %w", s.c.id, err)
		}
		s.recorded = true
	}
	return nil
}

// removeDone takes the commands in flight marked done off the queue,
// fenced, and forgets them; they count as sent. If that fails they stay in
// flight, for the next try.
func (w *Worker) removeDone(ctx context.Context, run *shardRun, keys keyspace.Keys) error {
	var entries []any
	for _, s := range run.cmd.inFlight {
		if s.done {
			entries = append(entries, s.c.entry)
		}
	}
	if len(entries) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commandFinishTimeout)
	defer cancel()
	l := run.lease
	n, err := removeSentScript.Run(ctx, w.cfg.Redis, []string{keys.Lease(run.key), keys.ShardMember(run.key, l.Owner()),
		keys.Commands(run.key)}, append([]any{l.Owner(), strconv.FormatUint(l.Token(), 10)}, entries...)...).Int()
	if err != nil {
		return fmt.Errorf("remove %d sent commands from the queue: %w", len(entries), err)
	}
	kept := run.cmd.inFlight[:0]
	for _, s := range run.cmd.inFlight {
		if !s.done {
			kept = append(kept, s)
		}
	}
	clear(run.cmd.inFlight[len(kept):])
	run.cmd.inFlight = kept
	w.m.commands.WithLabelValues(fleet.StateSent).Add(float64(n))
	return nil
}

// releaseInFlight runs when the loop stops. While the lease is held (a
// handoff), it takes off the queue the commands in flight on a connection
// still open, as well as those Discord read: the handoff closes that
// connection right after them, and Discord reads a connection in order, so
// it reads them before the close. Those whose connection ended unconfirmed
// stay at the head of the queue, and the shard's next owner (or, after a
// split, its children's) sends them first. A lease already gone removes
// nothing: the next owner sends again everything in flight.
func (w *Worker) releaseInFlight(run *shardRun, keys keyspace.Keys) {
	if len(run.cmd.inFlight) == 0 || run.lease.Context().Err() != nil {
		return
	}
	for i := range run.cmd.inFlight {
		s := &run.cmd.inFlight[i]
		if !s.done && !pastDeadline(s.c) {
			_, ended := s.receipt.Read()
			s.done = ended == nil
			continue
		}
		s.done = true
	}
	if err := w.removeDone(context.Background(), run, keys); err != nil {
		w.log.Warn("commands sent before a handoff could not be taken off the queue: the next owner sends them again",
			"shard_id", run.key.ID, "shard_count", run.key.Count, "err", err)
	}
}

// newCommandOutcomes makes shardfleet_commands_total{outcome}: the
// gateway commands this worker took off their queues as sent (once Discord
// confirmed them, or at a handoff), expired or rejected. Every outcome
// starts at 0.
func newCommandOutcomes() *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "shardfleet", Name: "commands_total",
		Help: "Gateway commands from the fleet's queues, by outcome (sent, expired, rejected)."}, []string{"outcome"})
	for _, o := range []string{fleet.StateSent, fleet.StateExpired, fleet.StateRejected} {
		v.WithLabelValues(o)
	}
	return v
}

// expire records that c's deadline passed before it was sent, and takes it
// off the queue. If a previous owner sent it (and died before Discord
// confirmed it), it keeps its `sent` outcome: Discord may have read it.
func (w *Worker) expire(ctx context.Context, run *shardRun, keys keyspace.Keys, c queuedCommand, out fleet.Outcome) error {
	prev, err := w.cfg.Redis.Get(ctx, keys.CommandOutcome(run.key, c.id)).Bytes()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("read outcome of %s: %w", c.id, err)
	}
	var o fleet.Outcome
	if json.Unmarshal(prev, &o) != nil || o.State != fleet.StateSent {
		return w.finishCommand(ctx, run, keys, c, out)
	}
	run.cmd.inFlight = append(run.cmd.inFlight, sentCommand{c: c, recorded: true, done: true})
	return w.removeDone(ctx, run, keys)
}

// finishCommand records an expired or rejected command's outcome and takes
// it off the queue.
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
// of the shard a message names, until ctx ends. A message lost (not
// subscribed at the time: Redis down, a failover, the reconnect of the
// subscription) is made up for by a sweep of every held shard's queue each
// time the subscription is confirmed (go-redis resubscribes on its own), and
// every CommandSweep: one pipelined round trip (per Redis Cluster node) for
// the whole worker, not a poll per shard.
func (w *Worker) commandWakes(ctx context.Context) {
	sub := w.cfg.Redis.Subscribe(ctx, w.keys.CommandChannel())
	defer sub.Close()
	ch := sub.ChannelWithSubscriptions()
	sweep := time.NewTicker(w.cfg.CommandSweep)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sweep.C:
			w.sweepCommands(ctx)
		case m, ok := <-ch:
			if !ok {
				return
			}
			switch m := m.(type) {
			case *redis.Message:
				w.wakeCommands(m.Payload)
			case *redis.Subscription:
				w.sweepCommands(ctx)
			}
		}
	}
}

// sweepCommands wakes the loops of the held shards whose queue, or a queue
// of a split shard they adopt from, holds commands: one XLEN each, in one
// pipeline. A queue holding only commands in flight wakes a loop that is
// running anyway.
func (w *Worker) sweepCommands(ctx context.Context) {
	w.mu.RLock()
	runs := make([]*shardRun, 0, len(w.shards))
	for _, run := range w.shards {
		runs = append(runs, run)
	}
	w.mu.RUnlock()
	if len(runs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.CommandSweep)
	defer cancel()
	pipe := w.cfg.Redis.Pipeline()
	// One slice of (shard, queue length) for the sweep, not a map of slices:
	// it runs every 15 s over every shard, on an idle worker too.
	type probe struct {
		run *shardRun
		n   *redis.IntCmd
	}
	probes := make([]probe, 0, len(runs))
	for _, run := range runs {
		probes = append(probes, probe{run, pipe.XLen(ctx, w.keys.Commands(run.key))})
		for _, k := range run.cmd.adoptsFrom() {
			probes = append(probes, probe{run, pipe.XLen(ctx, w.keys.Commands(k))})
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && ctx.Err() == nil {
		w.m.redisErrors.Add(1)
		w.log.Warn("gateway commands: sweep of the queues", "shards", len(runs), "err", err)
	}
	var woken *shardRun
	for _, p := range probes {
		if p.run != woken && p.n.Val() > 0 {
			woken = p.run
			w.wakeRun(p.run)
		}
	}
}

// wakeCommands wakes the command loop of the shard "count:id" names, if it
// is here; else those of the shards here it may have split into (a sender
// that read the layout before the split queued for it: they adopt it).
func (w *Worker) wakeCommands(name string) {
	count, id, ok := strings.Cut(name, ":")
	c, err1 := strconv.Atoi(count)
	i, err2 := strconv.Atoi(id)
	if !ok || err1 != nil || err2 != nil || c <= 0 {
		return
	}
	key := keyspace.ShardKey{ID: i, Count: c}
	var wake []*shardRun
	w.mu.RLock()
	if run := w.shards[key]; run != nil {
		wake = append(wake, run)
	} else {
		for k, run := range w.shards {
			if k.Count > c && k.Count%c == 0 && k.ID%c == i {
				wake = append(wake, run)
			}
		}
	}
	w.mu.RUnlock()
	for _, run := range wake {
		w.wakeRun(run)
	}
}
