package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// FrameFault is a kind of bad message from the server that the gateway
// refused or recovered from (see Config.FrameFaultHook). One bad message must
// not poison a session: a sequence it gets wrong would make every later event
// look like a duplicate, and an unreadable one would be replayed forever.
type FrameFault int

const (
	// FrameFaultSeqGap: a dispatch's s jumped ahead of the last seq + 1. It
	// was not delivered nor trusted; the connection RESUMEs from the last
	// seq so that Discord replays what is missing.
	FrameFaultSeqGap FrameFault = iota + 1
	// FrameFaultSeqGapAccepted: the same jump came back first thing after
	// that RESUME's replay, so Discord means it: the seq was raised to it
	// and the dispatch delivered.
	FrameFaultSeqGapAccepted
	// FrameFaultBadSeq: a dispatch with no s, s <= 0, or s not above the
	// last seq (going backwards outside a replay). Not delivered; the seq
	// is unchanged.
	FrameFaultBadSeq
	// FrameFaultNoType: a dispatch without t. Not delivered.
	FrameFaultNoType
	// FrameFaultInvalidUTF8: a dispatch whose t or d is not valid UTF-8.
	// Not delivered.
	FrameFaultInvalidUTF8
	// FrameFaultUnreadable: a message could not be read (over ReadLimit,
	// compressed or not, or undecodable); the connection RESUMEs to read it
	// again.
	FrameFaultUnreadable
	// FrameFaultSessionAbandoned: the message at the same seq of the same
	// session stayed unreadable after Config.UnreadableRetries RESUMEs; the
	// session was given up and the next connection IDENTIFYs.
	FrameFaultSessionAbandoned
)

func (f FrameFault) String() string {
	switch f {
	case FrameFaultSeqGap:
		return "seq_gap"
	case FrameFaultSeqGapAccepted:
		return "seq_gap_accepted"
	case FrameFaultBadSeq:
		return "bad_seq"
	case FrameFaultNoType:
		return "no_type"
	case FrameFaultInvalidUTF8:
		return "invalid_utf8"
	case FrameFaultUnreadable:
		return "unreadable"
	case FrameFaultSessionAbandoned:
		return "session_abandoned"
	}
	return "unknown"
}

// FrameFaults lists every FrameFault, for callers that pre-register a
// counter per kind.
var FrameFaults = []FrameFault{FrameFaultSeqGap, FrameFaultSeqGapAccepted, FrameFaultBadSeq,
	FrameFaultNoType, FrameFaultInvalidUTF8, FrameFaultUnreadable, FrameFaultSessionAbandoned}

// FrameFaultHook is told of every FrameFault, on the connection's read loop or
// run goroutine: it must return quickly (count, do not block).
type FrameFaultHook func(shardID int, kind FrameFault)

var (
	// errSeqGap closes a connection (resumably) that got a dispatch whose
	// s jumped ahead, so that the RESUME makes Discord replay the gap.
	errSeqGap = errors.New("gateway: dispatch seq jumped ahead")
	// errUnreadable marks a message that could not be read: over the read
	// limit, or undecodable. A replay sends it again, so these are counted.
	errUnreadable = errors.New("gateway: unreadable message")
)

// frameFault logs nothing: it reports kind to the hook, if any.
func (g *gatewayImpl) frameFault(kind FrameFault) {
	if h := g.cfg.FrameFaultHook; h != nil {
		h(g.cfg.ShardID, kind)
	}
}

// seqVerdict is what a dispatch's s means for the session.
type seqVerdict int

const (
	seqNext        seqVerdict = iota // the next one (or the first of the session): taken
	seqBad                           // no s, s <= 0, or not above the last: refused
	seqGap                           // jumped ahead: refused, RESUME to replay the gap
	seqGapAccepted                   // the remembered jump again, right after its replay: taken
)

// seqGuard is the sequence state beyond ShardState, guarded by gatewayImpl.mu.
type seqGuard struct {
	// jump is the s of the last refused jump (0: none). The RESUME it
	// caused gives the jump one chance to come back: if the replay or the
	// first dispatch after RESUMED jumps to it again, it is taken.
	jump int
	// unreadableSeq is the seq at which gatewayImpl.unreadable counts
	// consecutive unreadable messages (READY starts afresh).
	unreadableSeq int
}

// admitSeq decides on a dispatch's s and, when it is taken, makes it the
// resume point. lastChance is set for the first dispatch after RESUMED: the
// remembered jump is forgotten after it, unless it is a new jump.
func (g *gatewayImpl) admitSeq(seq int, hasSeq, lastChance bool) (seqVerdict, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	last := g.state.Sequence
	v := seqNext
	switch {
	case !hasSeq || seq <= 0:
		v = seqBad
	case !g.hasSeq || seq == last+1:
	case seq <= last:
		v = seqBad
	case seq == g.seq.jump:
		v = seqGapAccepted
	default:
		v = seqGap
		g.seq.jump = seq
	}
	if v == seqGapAccepted || (lastChance && v != seqGap) {
		g.seq.jump = 0
	}
	if v == seqNext || v == seqGapAccepted {
		g.state.Sequence, g.hasSeq = seq, true
	}
	return v, last
}

// admitResumedSeq takes RESUMED's s as the resume point when it is the next
// one. RESUMED is never refused (it completes the handshake); a seq of it
// that does not follow is ignored, and the next dispatch is judged against
// the last good seq.
func (g *gatewayImpl) admitResumedSeq(seq int, hasSeq bool) {
	g.mu.Lock()
	if hasSeq && (!g.hasSeq || seq == g.state.Sequence+1) {
		g.state.Sequence, g.hasSeq = seq, true
	}
	g.mu.Unlock()
}

// checkDispatchSeq applies admitSeq to an ordinary dispatch (not READY or
// RESUMED) and reports whether the dispatch may go on. A jump closes the
// connection resumably; a refused or accepted s is logged and counted.
func (c *connection) checkDispatchSeq(env *envelope) bool {
	lastChance := c.ready && !c.sawDispatch
	c.sawDispatch = c.sawDispatch || c.ready
	v, last := c.g.admitSeq(env.seq, env.hasSeq, lastChance)
	switch v {
	case seqGap:
		c.g.frameFault(FrameFaultSeqGap)
		c.fail(fmt.Errorf("%w: s %d after %d (%s); resuming to replay the gap", errSeqGap, env.seq, last, env.t),
			ActionResume, CloseCodeReconnect, "sequence gap")
		return false
	case seqBad:
		c.g.log.Warn("dropping a dispatch with a bad seq", slog.String("event", string(env.t)),
			slog.Int("seq", env.seq), slog.Bool("has_seq", env.hasSeq), slog.Int("last_seq", last))
		c.g.frameFault(FrameFaultBadSeq)
		return false
	case seqGapAccepted:
		c.g.log.Error("dispatch seq jumped ahead again after a replay: accepting it", slog.String("event", string(env.t)),
			slog.Int("seq", env.seq), slog.Int("last_seq", last))
		c.g.frameFault(FrameFaultSeqGapAccepted)
	}
	return true
}

// dispatchFault returns why an ordinary dispatch must not be delivered,
// whatever its seq, or 0. The data the handler gets is always valid UTF-8
// JSON with an event type.
func dispatchFault(env *envelope) FrameFault {
	switch {
	case env.t == "":
		return FrameFaultNoType
	case !utf8.ValidString(string(env.t)) || !utf8.Valid(env.d):
		return FrameFaultInvalidUTF8
	}
	return 0
}

// refuseContent logs and counts a dispatch that dispatchFault refused.
func (c *connection) refuseContent(env *envelope, kind FrameFault) {
	c.g.log.Warn("dropping a malformed dispatch", slog.String("fault", kind.String()),
		slog.Int("seq", env.seq), slog.Int("bytes", len(env.d)))
	c.g.frameFault(kind)
}

// isUnreadable reports whether a connection's read error means that a message
// could not be read: one over the websocket read limit (coder/websocket has
// closed the connection with 1009 already), or one the transport or decoder
// refused (marked by readLoop).
func isUnreadable(err error) bool {
	return errors.Is(err, websocket.ErrMessageTooBig) || errors.Is(err, errUnreadable)
}

// afterUnreadable counts a connection lost to an unreadable message and
// returns the action for the next one: RESUME to read the message again,
// until UnreadableRetries RESUMEs in a row found it unreadable at the same
// seq of the same session; then the session is given up (IDENTIFY), since
// every replay would send the same message.
func (g *gatewayImpl) afterUnreadable(action CloseAction) CloseAction {
	g.mu.Lock()
	st := g.state
	if g.seq.unreadableSeq != st.Sequence {
		g.seq.unreadableSeq, g.unreadable = st.Sequence, 0
	}
	if int(g.unreadable) <= g.cfg.UnreadableRetries {
		g.unreadable++
	}
	tries := int(g.unreadable)
	g.mu.Unlock()
	if action != ActionResume || st.SessionID == "" {
		g.frameFault(FrameFaultUnreadable)
		return action
	}
	if tries > g.cfg.UnreadableRetries {
		g.log.Error("a message stays unreadable after resuming: giving up the session for a new one",
			slog.Int("seq", st.Sequence), slog.Int("resumes", tries-1))
		g.frameFault(FrameFaultSessionAbandoned)
		return ActionReidentify
	}
	g.log.Warn("unreadable message: resuming to read it again", slog.Int("seq", st.Sequence),
		slog.Int("try", tries), slog.Int("of", g.cfg.UnreadableRetries))
	g.frameFault(FrameFaultUnreadable)
	return action
}
