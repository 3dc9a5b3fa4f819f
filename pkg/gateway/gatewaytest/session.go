package gatewaytest

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// session is one gateway session. Every field is guarded by Server.mu.
type session struct {
	id         string
	shardID    int
	shardCount int
	version    int // API version of the IDENTIFY connection (echoed in READY)

	seq  int       // last seq assigned
	ring eventRing // the last ReplayBuffer dispatches, for RESUME and SentEvents

	conn           *conn // attached connection, nil while disconnected
	wireSeq        int   // last seq enqueued on conn (gap self-check)
	live           bool  // counted in Server.liveByKey
	ended          bool
	disconnectedAt time.Time // when conn went away; resumable until + ResumeTimeout
}

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// expired reports whether a disconnected session is past its resume window.
func (ss *session) expired(now time.Time, timeout time.Duration) bool {
	return ss.conn == nil && !ss.disconnectedAt.IsZero() && now.Sub(ss.disconnectedAt) > timeout
}

func (ss *session) info() SessionInfo {
	return SessionInfo{ID: ss.id, ShardID: ss.shardID, ShardCount: ss.shardCount,
		Seq: ss.seq, Connected: ss.conn != nil, Ended: ss.ended}
}

// eventRing keeps the last cap dispatches of a session in seq order. It grows
// up to cap, then overwrites the oldest.
type eventRing struct {
	buf   []SentEvent
	start int // index of the oldest entry once full
	cap   int
}

func newEventRing(capacity int) eventRing { return eventRing{cap: capacity} }

func (r *eventRing) push(ev SentEvent) {
	if len(r.buf) < r.cap {
		r.buf = append(r.buf, ev)
		return
	}
	r.buf[r.start] = ev
	r.start = (r.start + 1) % r.cap
}

func (r *eventRing) at(i int) *SentEvent { return &r.buf[(r.start+i)%len(r.buf)] }

// oldestSeq is the seq of the oldest kept dispatch, or 0 when empty.
func (r *eventRing) oldestSeq() int {
	if len(r.buf) == 0 {
		return 0
	}
	return r.at(0).Seq
}

// since returns the kept dispatches with Seq > seq, in order.
func (r *eventRing) since(seq int) []SentEvent {
	var out []SentEvent
	for i := range r.buf {
		if ev := r.at(i); ev.Seq > seq {
			out = append(out, *ev)
		}
	}
	return out
}

// all returns every kept dispatch, oldest first.
func (r *eventRing) all() []SentEvent { return r.since(-1 << 62) }
