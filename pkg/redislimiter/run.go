package redislimiter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
)

// Outcomes of acquireScript.
const (
	statusExhausted = -1
	statusWait      = 0
	statusGranted   = 1
)

// acquireResult is acquireScript's reply.
type acquireResult struct {
	status int
	value  int64 // grant µs, wait µs (-1: not head), or remaining budget
	seq    int64 // the ticket's arrival number in its bucket's queue; exhausted: the budget's PTTL ms
}

// commonArgs are the arguments of every script, in commonArgNames order.
func (l *Limiter) commonArgs(b int, ticket string) []any {
	l.mu.Lock()
	known := l.epoch
	l.mu.Unlock()
	grantLog := "0"
	if l.cfg.GrantLog {
		grantLog = "1"
	}
	quiet := l.cfg.HoldTTL + l.cfg.Window + l.cfg.Margin
	newQuiet := (l.cfg.Window + l.cfg.Margin).Milliseconds() + 1
	if l.cfg.TrustNewEpoch {
		newQuiet = 0
	}
	return []any{
		ticket, strconv.Itoa(b), channelName(l.cfg.KeyPrefix), grantLog, l.cfg.HolderID,
		known, l.id, quiet.Milliseconds() + 1, newQuiet,
	}
}

// LearnEpoch reads the epoch of the limiter's state in Redis, when there is
// one, without waiting for a first WaitBucket to bring it back: a Limiter
// that knows the epoch notices a data loss (and keeps the quiet period after
// it), one that does not takes a Redis without state for a new one, which
// with Config.TrustNewEpoch grants at once. A process that may IDENTIFY
// long after it started (say a worker that so far only RESUMEd its
// sessions, when they are all invalidated and Redis is flushed) should call
// it at start.
func (l *Limiter) LearnEpoch(ctx context.Context) error {
	if l.err != nil {
		return l.err
	}
	epoch, err := l.client.HGet(ctx, scriptKeys(l.cfg.KeyPrefix, 0)[keyEpoch], "id").Result()
	if errors.Is(err, redis.Nil) {
		return nil // no state yet: the first script call creates the epoch
	}
	if err != nil {
		return fmt.Errorf("redislimiter: read epoch: %w", err)
	}
	l.noteEpoch(epoch)
	return nil
}

// noteEpoch records the epoch a script saw, for data-loss detection.
func (l *Limiter) noteEpoch(v any) {
	epoch, ok := v.(string)
	if !ok || epoch == "" {
		return
	}
	l.mu.Lock()
	changed := l.epoch != "" && l.epoch != epoch
	l.epoch = epoch
	l.mu.Unlock()
	if changed {
		l.log.Warn("redis lost the limiter's state: grants pause for the quiet period",
			"quiet", l.cfg.HoldTTL+l.cfg.Window+l.cfg.Margin)
	}
}

func (l *Limiter) acquire(ctx context.Context, b int, ticket string) (acquireResult, error) {
	args := append(l.commonArgs(b, ticket),
		l.cfg.HoldTTL.Milliseconds(), l.cfg.TicketTTL.Milliseconds(), l.cfg.BudgetReserve)
	reply, err := acquireScript.Run(ctx, l.client, scriptKeys(l.cfg.KeyPrefix, b), args...).Slice()
	if r, refused := keyspace.ParseRefusal(err); refused {
		res, err := l.acquireRefused(r)
		if err != nil {
			return acquireResult{}, fmt.Errorf("acquire: %w", err)
		}
		return res, nil
	}
	if err != nil {
		return acquireResult{}, fmt.Errorf("acquire: %w", err)
	}
	if len(reply) != 3 {
		return acquireResult{}, fmt.Errorf("acquire: %w: %d elements", errUnexpectedReply, len(reply))
	}
	l.noteEpoch(reply[2])
	res := acquireResult{status: statusGranted}
	res.value, err = parseInt(reply[0])
	if err == nil {
		res.seq, err = parseInt(reply[1])
	}
	if err != nil {
		return acquireResult{}, fmt.Errorf("acquire: %w", err)
	}
	return res, nil
}

// acquireRefused reads acquireScript's refusals: refuseWait (value wait µs)
// and refuseBudget (value remaining, seq the budget's PTTL ms).
func (l *Limiter) acquireRefused(r keyspace.Refusal) (acquireResult, error) {
	var res acquireResult
	var f []string
	var err error
	switch r.Code {
	case refuseWait:
		res.status = statusWait
		f, err = refusalFields(r, "wait_us", "seq", "epoch")
	case refuseBudget:
		res.status = statusExhausted
		f, err = refusalFields(r, "remaining", "reset_ms", "epoch")
	default:
		return acquireResult{}, fmt.Errorf("%w: %v", errUnexpectedReply, &r)
	}
	if err != nil {
		return acquireResult{}, err
	}
	l.noteEpoch(f[2])
	res.value, err = parseInt(f[0])
	if err == nil {
		res.seq, err = parseInt(f[1])
	}
	return res, err
}

// unlock reports whether ticket held the bucket (and now cools it down).
func (l *Limiter) unlock(ctx context.Context, b int, ticket string) (bool, error) {
	cooldown := (l.cfg.Window + l.cfg.Margin).Microseconds()
	args := append(l.commonArgs(b, ticket), cooldown)
	reply, err := unlockScript.Run(ctx, l.client, scriptKeys(l.cfg.KeyPrefix, b), args...).Slice()
	if r, refused := keyspace.ParseRefusal(err); refused {
		if r.Code != refuseNotHeld {
			return false, fmt.Errorf("unlock: %w: %v", errUnexpectedReply, &r)
		}
		f, err := refusalFields(r, "epoch")
		if err != nil {
			return false, fmt.Errorf("unlock: %w", err)
		}
		l.noteEpoch(f[0])
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("unlock: %w", err)
	}
	if len(reply) != 2 {
		return false, fmt.Errorf("unlock: %w: %d elements", errUnexpectedReply, len(reply))
	}
	l.noteEpoch(reply[1])
	return true, nil
}

func (l *Limiter) runLeave(ctx context.Context, b int, ticket string) error {
	reply, err := leaveScript.Run(ctx, l.client, scriptKeys(l.cfg.KeyPrefix, b), l.commonArgs(b, ticket)...).Slice()
	if err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	if len(reply) == 3 {
		l.noteEpoch(reply[2])
	}
	return nil
}

// refusalFields reads the values of a refusal's "name=value" detail, in the
// order of names; every name must be there.
func refusalFields(r keyspace.Refusal, names ...string) ([]string, error) {
	got := map[string]string{}
	for _, f := range strings.Fields(r.Detail) {
		if k, v, ok := strings.Cut(f, "="); ok {
			got[k] = v
		}
	}
	out := make([]string, len(names))
	for i, n := range names {
		v, ok := got[n]
		if !ok {
			return nil, fmt.Errorf("%w: %v lacks %s", errUnexpectedReply, &r, n)
		}
		out[i] = v
	}
	return out, nil
}
