package redislimiter

import (
	"context"
	"fmt"
	"strconv"
)

// LogEntry is one event of the grant log (Config.GrantLog), stamped by the
// script that made it with Redis server time.
type LogEntry struct {
	Event  string // "grant", "unlock", "revoke" (a grant never handed out), "dataloss"
	Bucket int
	Micros int64  // Redis TIME, µs since 1970
	Ticket string // the waiter's ticket (= permit token)
	Holder string // Config.HolderID of the limiter that ran the script
	Seq    int64  // the ticket's arrival number in its bucket's queue
}

// GrantLog reads the whole grant log, oldest first. It is empty unless
// Config.GrantLog is on.
func (l *Limiter) GrantLog(ctx context.Context) ([]LogEntry, error) {
	if l.err != nil {
		return nil, l.err
	}
	msgs, err := l.client.XRange(ctx, logKey(l.cfg.KeyPrefix), "-", "+").Result()
	if err != nil {
		return nil, fmt.Errorf("redislimiter: read grant log: %w", err)
	}
	out := make([]LogEntry, 0, len(msgs))
	for _, m := range msgs {
		str := func(k string) string { s, _ := m.Values[k].(string); return s }
		b, _ := strconv.Atoi(str("b"))
		us, _ := strconv.ParseInt(str("t"), 10, 64)
		seq, _ := strconv.ParseInt(str("s"), 10, 64)
		out = append(out, LogEntry{Event: str("ev"), Bucket: b, Micros: us, Ticket: str("tk"), Holder: str("h"), Seq: seq})
	}
	return out, nil
}
