package lease

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// renewOutcome is what one keep-alive round trip found.
type renewOutcome struct {
	err  error
	gone bool  // member key missing, epoch unchanged: membership expired
	view *view // nil unless the renew succeeded ("ok"); an epoch change re-asserts and leaves it nil
}

// keepAlive renews the membership every RenewInterval and self-fences when
// no renew succeeded within RenewDeadline of the send time of the last one
// that did. It is the session's only background goroutine; Close and Orphan
// stop it and wait. Each renew runs on a helper goroutine owned by this loop
// (it always waits for it), so the fence timer fires on time even while a
// renew hangs on a paused or black-holed Redis.
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
			s.finish(ErrSelfFenced)
			return
		case <-next.C():
		}
		sent := s.clock.Now()
		result := make(chan renewOutcome, 1)
		// A timeout, not a deadline: a context deadline is on time.Now.
		callCtx, callCancel := context.WithTimeout(ctx, s.clock.Until(lastOK.Add(s.cfg.RenewDeadline)))
		go func() { result <- s.renewOnce(callCtx) }()
		var out renewOutcome
		select {
		case out = <-result:
		case <-s.stop:
			callCancel()
			<-result
			return
		case <-fence.C():
			s.finish(ErrSelfFenced)
			callCancel()
			<-result
			return
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
			fence.Reset(s.clock.Until(lastOK.Add(s.cfg.RenewDeadline)))
			if out.view != nil {
				s.publish(out.view)
			}
		}
		next.Reset(s.cfg.RenewInterval - s.clock.Since(sent))
	}
}

func (s *Session) publish(v *view) {
	s.view.Store(v)
	select {
	case s.viewCh <- struct{}{}:
	default:
	}
}

// renewOnce runs the renew script and, after data loss, the re-assertion.
func (s *Session) renewOnce(ctx context.Context) renewOutcome {
	k := s.keys
	s.mu.Lock()
	epoch := s.epoch
	s.mu.Unlock()
	res, err := renewScript.Run(ctx, s.client,
		[]string{s.memKey, k.Members(), k.MembersSince(), k.Epoch(), k.Layout()},
		s.cfg.WorkerID, s.cfg.TTL.Milliseconds(), epoch,
	).Slice()
	if err != nil {
		return renewOutcome{err: fmt.Errorf("renew member: %w", err)}
	}
	status, _ := res[0].(string)
	switch status {
	case "ok":
		v, err := parseView(res)
		if err != nil {
			return renewOutcome{err: fmt.Errorf("renew member: %w", err)}
		}
		return renewOutcome{view: v}
	case "gone":
		return renewOutcome{gone: true}
	case "epoch":
		seen, _ := res[1].(string)
		s.log.Warn("lease: redis epoch changed (data loss); re-asserting leases",
			slog.String("known_epoch", epoch), slog.String("seen_epoch", seen))
		if err := s.reassert(ctx); err != nil {
			return renewOutcome{err: err}
		}
		return renewOutcome{}
	}
	return renewOutcome{err: fmt.Errorf("renew member: %w: status %q", ErrCorrupt, status)}
}

func parseView(res []any) (*view, error) {
	if len(res) < 5 {
		return nil, fmt.Errorf("%w: renew reply %v", ErrCorrupt, res)
	}
	nowMS, _ := res[1].(int64)
	// The script reports a corrupt layout as -1; the reconciler then reloads
	// it, logs what is wrong and keeps the last good layout.
	lv, err := strconv.ParseInt(fmt.Sprint(res[2]), 10, 64)
	if err != nil {
		lv = -1
	}
	ids, _ := res[3].([]any)
	since, _ := res[4].([]any)
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

// reassert re-creates the member key and every lease of the session that is
// absent, with its old token, after Redis lost its data; leases someone else
// took meanwhile end with ErrLeaseLost. It also re-writes the last layout this
// session saw if the layout is gone.
func (s *Session) reassert(ctx context.Context) error {
	k := s.keys
	s.mu.Lock()
	held := make([]*Lease, 0, len(s.leases))
	for _, l := range s.leases {
		held = append(held, l)
	}
	layout := s.layout
	s.mu.Unlock()
	keys := []string{s.memKey, k.Members(), k.MembersSince(), k.Epoch(), k.Grace(), k.Fence(), k.Layout()}
	data := ""
	if layout.Count > 0 {
		data = encodeLayout(layout)
	}
	args := []any{s.cfg.WorkerID, s.info, s.cfg.TTL.Milliseconds(), uuid.NewString(),
		s.cfg.DataLossGrace.Milliseconds(), layout.Version, data, s.cfg.DataLossProbe.Milliseconds()}
	for _, l := range held {
		keys = append(keys, k.Lease(l.key))
		args = append(args, strconv.FormatUint(l.token, 10))
	}
	res, err := reassertScript.Run(ctx, s.client, keys, args...).Slice()
	if err != nil {
		return fmt.Errorf("re-assert leases: %w", err)
	}
	if len(res) != len(held)+1 {
		return fmt.Errorf("re-assert leases: %w: reply %v", ErrCorrupt, res)
	}
	epoch, _ := res[0].(string)
	s.mu.Lock()
	s.epoch = epoch
	s.mu.Unlock()
	lost := 0
	for i, l := range held {
		if ok, _ := res[i+1].(int64); ok != 1 {
			lost++
			s.drop(l, fmt.Errorf("re-assert after data loss: %w", ErrLeaseLost))
		}
	}
	s.log.Info("lease: re-asserted after data loss", slog.Int("kept", len(held)-lost), slog.Int("lost", lost))
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
