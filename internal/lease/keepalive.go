package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
)

// renewOutcome is what one keep-alive round trip found.
type renewOutcome struct {
	err   error
	gone  bool          // member key missing, epoch unchanged: membership expired
	view  *view         // nil unless the fleet-wide renew succeeded; an epoch change re-asserts and leaves it nil
	parts []partOutcome // per partition
}

// partOutcome is one partition's part of a renew.
type partOutcome struct {
	ok  bool // the mirror is renewed (or re-created): the partition lives
	err error
}

// keepAlive renews the membership and its partition mirrors every
// RenewInterval, in one pipeline. It self-fences the session when no renew of
// the fleet-wide member key succeeded within RenewDeadline of the send time
// of the last one that did, and a partition alone when its mirror's renew did
// not. It is the session's only background goroutine; Close and Orphan stop
// it and wait. Each renew runs on a helper goroutine owned by this loop (it
// always waits for it), so the fence timer fires on time even while a renew
// hangs on a paused or black-holed Redis.
//
// lastOK and every duration here are on s.clock, never mixed with time.Now,
// so an offset of the local clock is harmless; its rate error is bounded by
// Config.MaxClockDrift, which validate checks against TTL.
func (s *Session) keepAlive(lastOK time.Time) {
	defer close(s.exited)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fence := s.clock.NewTimer(s.clock.Until(lastOK.Add(s.cfg.RenewDeadline)))
	defer fence.Stop()
	next := s.clock.NewTimer(s.cfg.RenewInterval)
	defer next.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-fence.C():
			if !s.fenceExpired(lastOK, fence) {
				return
			}
			continue
		case <-next.C():
		}
		sent := s.clock.Now()
		result := make(chan renewOutcome, 1)
		// A timeout, not a deadline: a context deadline is on time.Now.
		callCtx, callCancel := context.WithTimeout(ctx, s.renewTimeout(lastOK))
		go func() { result <- s.renewOnce(callCtx, sent) }()
		var out renewOutcome
	wait:
		for {
			select {
			case out = <-result:
				break wait
			case <-s.stop:
				callCancel()
				<-result
				return
			case <-fence.C():
				if !s.fenceExpired(lastOK, fence) {
					callCancel()
					<-result
					return
				}
			}
		}
		callCancel()
		switch {
		case out.err != nil:
			s.log.Warn("lease: renew", slog.Any("error", out.err),
				slog.Duration("fence_in", s.clock.Until(lastOK.Add(s.cfg.RenewDeadline))))
		case out.gone:
			s.finish(ErrExpired)
			return
		default:
			lastOK = sent
			if out.view != nil {
				s.publish(out.view)
			}
		}
		s.notePartitions(out.parts, sent)
		fence.Reset(s.clock.Until(s.earliestDeadline(lastOK)))
		next.Reset(s.cfg.RenewInterval - s.clock.Since(sent))
	}
}

// renewTimeout bounds one renew: up to the earliest deadline with one
// partition. With several, the pipeline waits for its slowest node, and a
// silent node would hold the replies of the others until their own deadlines
// passed: it ends halfway there, so the partitions (and the fleet-wide key)
// whose nodes answered count as renewed before any of them falls due.
func (s *Session) renewTimeout(lastOK time.Time) time.Duration {
	left := s.clock.Until(s.earliestDeadline(lastOK))
	if s.keys.Partitions() > 1 {
		return left / 2
	}
	return left
}

// earliestDeadline is when the next fence falls due: the fleet-wide one
// (lastOK + RenewDeadline) or an earlier one of a live partition.
func (s *Session) earliestDeadline(lastOK time.Time) time.Time {
	at := lastOK
	s.mu.Lock()
	for _, p := range s.parts {
		if !p.fenced && p.lastOK.Before(at) {
			at = p.lastOK
		}
	}
	s.mu.Unlock()
	return at.Add(s.cfg.RenewDeadline)
}

// fenceExpired runs when the fence timer fires: past the fleet-wide deadline
// the session self-fences (false: the loop ends); else every partition past
// its deadline is fenced alone, and the timer is set for the next deadline.
func (s *Session) fenceExpired(lastOK time.Time, fence clockTimer) bool {
	now := s.clock.Now()
	if !now.Before(lastOK.Add(s.cfg.RenewDeadline)) {
		s.finish(ErrSelfFenced)
		return false
	}
	var ended []*Lease
	s.mu.Lock()
	for p := range s.parts {
		if s.parts[p].fenced || now.Before(s.parts[p].lastOK.Add(s.cfg.RenewDeadline)) {
			continue
		}
		s.parts[p].fenced = true
		for k, l := range s.leases {
			if s.keys.PartitionOf(k) == p {
				delete(s.leases, k)
				ended = append(ended, l)
			}
		}
		s.log.Warn("lease: partition self-fenced; its leases end, the others live on",
			slog.Int("partition", p), slog.String("reason", "no renew of its member mirror within the renew deadline"))
	}
	// Released later (retryReleases): the mirror may be renewed again before
	// it expires, and would then keep these leases from their next owners.
	s.unreleased = append(s.unreleased, ended...)
	s.mu.Unlock()
	for _, l := range ended {
		l.end(fmt.Errorf("partition %d: %w", s.keys.PartitionOf(l.key), ErrSelfFenced))
	}
	fence.Reset(s.clock.Until(s.earliestDeadline(lastOK)))
	return true
}

// notePartitions records the partitions renewed by the renew sent at sent.
func (s *Session) notePartitions(parts []partOutcome, sent time.Time) {
	var errs []error
	s.mu.Lock()
	for p, o := range parts {
		if o.ok {
			s.parts[p].lastOK, s.parts[p].fenced = sent, false
		} else if o.err != nil {
			errs = append(errs, fmt.Errorf("partition %d: %w", p, o.err))
		}
	}
	s.mu.Unlock()
	if len(errs) > 0 {
		s.log.Warn("lease: renew partitions", slog.Int("failed", len(errs)), slog.Any("error", errors.Join(errs...)))
	}
}

func (s *Session) publish(v *view) {
	s.view.Store(v)
	select {
	case s.viewCh <- struct{}{}:
	default:
	}
}

// renewOnce runs the renew of every partition's mirror and of the fleet-wide
// member in one pipeline (the partitions first, as register does), then what
// a refusal asks for: after a data loss the re-assertion, after a mirror's
// expiry a new register of it.
func (s *Session) renewOnce(ctx context.Context, sent time.Time) renewOutcome {
	k := s.keys
	n := k.Partitions()
	s.mu.Lock()
	epoch := s.epoch
	calls := make([]keyspace.Call, 0, n+1)
	for p := range n {
		calls = append(calls, keyspace.Call{Script: partRenewScript,
			Keys: []string{k.PartitionMember(p, s.cfg.WorkerID), k.PartitionEpoch(p)},
			Args: []any{s.cfg.WorkerID, s.cfg.TTL.Milliseconds(), s.parts[p].epoch}})
	}
	s.mu.Unlock()
	calls = append(calls, keyspace.Call{Script: renewScript,
		Keys: []string{s.memKey, k.Members(), k.MembersSince(), k.Epoch(), k.Layout()},
		Args: []any{s.cfg.WorkerID, s.cfg.TTL.Milliseconds(), epoch}})
	cmds := keyspace.RunPipelined(ctx, s.client, calls)
	out := s.renewFleet(ctx, cmds[n], epoch)
	if out.gone {
		return out
	}
	out.parts = make([]partOutcome, n)
	for p := range n {
		out.parts[p] = s.renewPartition(ctx, p, cmds[p].Err())
	}
	return out
}

// renewFleet reads the fleet-wide renew's reply.
func (s *Session) renewFleet(ctx context.Context, cmd *redis.Cmd, epoch string) renewOutcome {
	res, err := cmd.Slice()
	r, refused := keyspace.ParseRefusal(err)
	switch {
	case refused && r.Code == "GONE":
		return renewOutcome{gone: true}
	case refused && r.Code == "EPOCH":
		s.log.Warn("lease: redis epoch changed (data loss); re-asserting the membership",
			slog.String("known_epoch", epoch), slog.String("seen_epoch", r.Detail))
		if err := s.reassert(ctx); err != nil {
			return renewOutcome{err: err}
		}
		return renewOutcome{}
	case err != nil:
		return renewOutcome{err: fmt.Errorf("renew member: %w", err)}
	}
	v, err := parseView(res)
	if err != nil {
		return renewOutcome{err: fmt.Errorf("renew member: %w", err)}
	}
	return renewOutcome{view: v}
}

// renewPartition acts on partition p's renew reply.
func (s *Session) renewPartition(ctx context.Context, p int, err error) partOutcome {
	r, refused := keyspace.ParseRefusal(err)
	switch {
	case err == nil:
		return partOutcome{ok: true}
	case refused && r.Code == "EPOCH":
		s.log.Warn("lease: partition epoch changed (data loss); re-asserting its leases",
			slog.Int("partition", p), slog.String("seen_epoch", r.Detail))
		if err := s.reassertPartition(ctx, p); err != nil {
			return partOutcome{err: err}
		}
		return partOutcome{ok: true}
	case refused && r.Code == "GONE":
		// The mirror expired while the member key lived: the partition was
		// fenced at its deadline already (the deadline precedes the TTL), so
		// it holds no lease here. Write the mirror again.
		s.dropPartition(p, fmt.Errorf("member mirror of partition %d expired: %w", p, ErrLeaseLost))
		c := s.partRegisterCall(p)
		ep, _, err := parseRegister(c.Script.Run(ctx, s.client, c.Keys, c.Args...))
		if err != nil {
			return partOutcome{err: fmt.Errorf("register member mirror again: %w", err)}
		}
		s.mu.Lock()
		s.parts[p].epoch = ep
		s.mu.Unlock()
		return partOutcome{ok: true}
	}
	return partOutcome{err: fmt.Errorf("renew member mirror: %w", err)}
}

// dropPartition ends every lease of partition p the session holds.
func (s *Session) dropPartition(p int, cause error) {
	for _, l := range s.Leases() {
		if s.keys.PartitionOf(l.key) == p {
			s.drop(l, cause)
		}
	}
}

func parseView(res []any) (*view, error) {
	if len(res) < 4 {
		return nil, fmt.Errorf("%w: renew reply %v", ErrCorrupt, res)
	}
	nowMS, _ := res[0].(int64)
	// The script reports a corrupt layout as -1; the reconciler then reloads
	// it, logs what is wrong and keeps the last good layout.
	lv, err := strconv.ParseInt(fmt.Sprint(res[1]), 10, 64)
	if err != nil {
		lv = -1
	}
	ids, _ := res[2].([]any)
	since, _ := res[3].([]any)
	v := &view{now: time.UnixMilli(nowMS), layoutVersion: lv, members: make([]Member, 0, len(ids))}
	for i, id := range ids {
		m := Member{ID: fmt.Sprint(id)}
		if i < len(since) && since[i] != nil {
			if ms, err := strconv.ParseFloat(fmt.Sprint(since[i]), 64); err == nil {
				m.Since = time.UnixMilli(int64(ms))
			}
		}
		v.members = append(v.members, m)
	}
	slices.SortFunc(v.members, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return v, nil
}

// reassert re-creates the fleet-wide member key and membership after the
// fleet-wide keys were lost, and re-writes the last layout this session saw
// if the layout is gone.
func (s *Session) reassert(ctx context.Context) error {
	k := s.keys
	s.mu.Lock()
	layout := s.layout
	s.mu.Unlock()
	data := ""
	if layout.Count > 0 {
		data = encodeLayout(layout)
	}
	epoch, err := reassertScript.Run(ctx, s.client,
		[]string{s.memKey, k.Members(), k.MembersSince(), k.Epoch(), k.Layout()},
		s.cfg.WorkerID, s.info, s.cfg.TTL.Milliseconds(), uuid.NewString(), layout.Version, data).Text()
	if err != nil {
		return fmt.Errorf("re-assert membership: %w", err)
	}
	s.mu.Lock()
	s.epoch = epoch
	s.mu.Unlock()
	s.log.Info("lease: re-asserted the membership after data loss")
	return nil
}

// reassertPartition re-creates the mirror and every lease of the session in
// partition p that is absent, with its old token, after p lost its data;
// leases someone else took meanwhile end with ErrLeaseLost.
func (s *Session) reassertPartition(ctx context.Context, p int) error {
	k := s.keys
	var held []*Lease
	for _, l := range sortedLeases(s.Leases()) {
		if k.PartitionOf(l.key) == p {
			held = append(held, l)
		}
	}
	keys := []string{k.PartitionMember(p, s.cfg.WorkerID), k.PartitionEpoch(p), k.Grace(p), k.Fence(p)}
	args := []any{s.cfg.WorkerID, s.info, s.cfg.TTL.Milliseconds(), uuid.NewString(),
		s.cfg.DataLossGrace.Milliseconds(), s.cfg.DataLossProbe.Milliseconds()}
	for _, l := range held {
		keys = append(keys, k.Lease(l.key))
		args = append(args, strconv.FormatUint(l.token, 10))
	}
	res, err := partReassertScript.Run(ctx, s.client, keys, args...).Slice()
	if err != nil {
		return fmt.Errorf("re-assert leases of partition %d: %w", p, err)
	}
	if len(res) != len(held)+1 {
		return fmt.Errorf("re-assert leases of partition %d: %w: reply %v", p, ErrCorrupt, res)
	}
	epoch, _ := res[0].(string)
	s.mu.Lock()
	s.parts[p].epoch = epoch
	s.mu.Unlock()
	lost := 0
	for i, l := range held {
		if ok, _ := res[i+1].(int64); ok != 1 {
			lost++
			s.drop(l, fmt.Errorf("re-assert after data loss: %w", ErrLeaseLost))
		}
	}
	s.log.Info("lease: re-asserted after data loss", slog.Int("partition", p),
		slog.Int("kept", len(held)-lost), slog.Int("lost", lost))
	return nil
}

// drop ends l and forgets it, if it is still the session's lease on its key.
func (s *Session) drop(l *Lease, cause error) {
	s.mu.Lock()
	if s.leases[l.key] == l {
		delete(s.leases, l.key)
	}
	s.mu.Unlock()
	l.end(cause)
}
