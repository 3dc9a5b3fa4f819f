package gatewaytest

import (
	"crypto/subtle"
	"encoding/json"
	"strings"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// tokenOK compares a token from IDENTIFY/RESUME (with or without "Bot ")
// to the bot's, in constant time. A revoked token never matches. Needs s.mu.
func (s *Server) tokenOK(token string) bool {
	token = strings.TrimPrefix(token, "Bot ")
	return !s.tokenRevoked && subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.Token)) == 1
}

// handleIdentify runs IDENTIFY's checks in Discord's order and, when they
// pass, starts a session: READY then one GUILD_CREATE per guild of the shard.
func (s *Server) handleIdentify(c *conn, d json.RawMessage) *ProtocolError {
	id, perr := decodeIdentify(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.sess != nil {
		return protoErr(gateway.CloseAlreadyAuthenticated, "already authenticated")
	}
	if perr != nil && perr.Code != gateway.CloseInvalidShard && perr.Code != gateway.CloseInvalidIntents {
		return perr
	}
	if !s.tokenOK(id.Token) {
		return protoErr(gateway.CloseAuthenticationFailed, "authentication failed")
	}
	if perr != nil {
		return perr
	}
	if perr := s.checkIntents(gateway.Intents(*id.Intents)); perr != nil {
		return perr
	}
	shardID, count := 0, 1
	if id.shardSent {
		shardID, count = id.Shard[0], id.Shard[1]
	}
	if perr := s.checkShard(shardID, count); perr != nil {
		return perr
	}
	now := time.Now()
	if !s.takeSessionStart(now) {
		s.revokeToken()
		return protoErr(gateway.CloseAuthenticationFailed, "authentication failed")
	}
	key := shardID % s.cfg.MaxConcurrency
	last, seen := s.lastIdentify[key]
	violation := seen && now.Sub(last) < s.cfg.IdentifyWindow
	s.lastIdentify[key] = now
	rec := IdentifyRecord{Time: now, ShardID: shardID, ShardCount: count, Key: key, Violation: violation,
		Presence: presenceOrNil(id.Presence)}
	s.stats.Identifies++
	if violation {
		s.stats.IdentifyViolations++
		s.identifies = append(s.identifies, rec)
		c.log().Info("identify too soon for its key: op 9 false", "shard_id", shardID, "key", key)
		c.send(invalidSessionFrame(false))
		return nil
	}
	if s.withholdReady.Load() {
		s.identifies = append(s.identifies, rec)
		c.log().Info("withholding READY", "shard_id", shardID)
		return nil
	}
	ss := s.newSession(c, shardID, count)
	rec.SessionID = ss.id
	s.identifies = append(s.identifies, rec)
	if id.Compress && c.compression == gateway.CompressionNone {
		c.payloadZlib.Store(true)
	}
	s.sendReady(ss, id.shardSent)
	return nil
}

// checkIntents: undocumented bits (or a negative value) 4013; documented bits
// the bot is not allowed (privileged ones not enabled) 4014.
func (s *Server) checkIntents(in gateway.Intents) *ProtocolError {
	if in < 0 || in&^gateway.IntentsAll != 0 {
		return protoErr(gateway.CloseInvalidIntents, "invalid intent(s)")
	}
	if in&^s.cfg.AllowedIntents != 0 {
		return protoErr(gateway.CloseDisallowedIntents, "disallowed intent(s)")
	}
	return nil
}

// checkShard: a count below 1, an ID outside [0, count) or a count that is not
// the required multiple is 4010; too many guilds on the shard 4011. Needs s.mu.
func (s *Server) checkShard(shardID, count int) *ProtocolError {
	if count < 1 || shardID < 0 || shardID >= count {
		return protoErr(gateway.CloseInvalidShard, "invalid shard")
	}
	if m := s.cfg.ShardCountMultiple; m > 1 && count%m != 0 {
		return protoErr(gateway.CloseInvalidShard, "invalid shard: count must be a multiple of the assigned number")
	}
	if s.guildsOnShard(shardID, count) > s.cfg.MaxGuildsPerShard {
		return protoErr(gateway.CloseShardingRequired, "sharding required")
	}
	return nil
}

// takeSessionStart spends one session start; false when none is left. The
// window opens at the first start after a reset and lasts SessionStartResetAfter.
func (s *Server) takeSessionStart(now time.Time) bool {
	s.refreshSessionStarts(now)
	if s.remaining <= 0 {
		return false
	}
	if s.remaining == s.cfg.SessionStartTotal {
		s.startWindow = now
	}
	s.remaining--
	return true
}

func (s *Server) refreshSessionStarts(now time.Time) {
	if !s.startWindow.IsZero() && now.Sub(s.startWindow) >= s.cfg.SessionStartResetAfter {
		s.remaining = s.cfg.SessionStartTotal
		s.startWindow = time.Time{}
	}
}

// revokeToken acts out what Discord does when a bot exhausts its session
// starts: it resets the token. Every session ends, every connection closes
// with 4004, and the old token is refused (gateway 4004, REST 401) until
// RestoreToken. Needs s.mu.
func (s *Server) revokeToken() {
	s.tokenRevoked = true
	s.stats.TokenResets++
	s.log.Warn("session start limit exhausted: token reset, every session ends")
	for _, ss := range s.sessions {
		if !ss.ended {
			s.endSession(ss)
		}
	}
	for c := range s.conns {
		c.enqueue(outMsg{kind: outClose, code: gateway.CloseAuthenticationFailed, reason: "authentication failed"})
	}
}

// handleResume resumes a session: replay every buffered dispatch after the
// client's seq, then RESUMED. Unknown, ended, expired or no longer replayable
// sessions get op 9 false; a seq the session never reached closes 4007.
func (s *Server) handleResume(c *conn, d json.RawMessage) *ProtocolError {
	rd, perr := decodeResume(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.sess != nil {
		return protoErr(gateway.CloseAlreadyAuthenticated, "already authenticated")
	}
	if perr != nil {
		return perr
	}
	if !s.tokenOK(rd.Token) {
		return protoErr(gateway.CloseAuthenticationFailed, "authentication failed")
	}
	if s.withholdReady.Load() {
		c.log().Info("withholding RESUMED", "session_id", rd.SessionID)
		return nil
	}
	now := time.Now()
	seq := *rd.Seq
	rec := ResumeRecord{Time: now, SessionID: rd.SessionID, Seq: seq, URLPath: c.path}
	ss := s.sessions[rd.SessionID]
	if ss != nil {
		rec.ShardID, rec.ShardCount = ss.shardID, ss.shardCount
		if !ss.ended && ss.expired(now, s.cfg.ResumeTimeout) {
			s.endSession(ss)
		}
	}
	switch {
	case ss == nil || ss.ended:
		s.failResume(rec)
		c.send(invalidSessionFrame(false))
		return nil
	case seq > ss.seq || seq < 0:
		s.endSession(ss)
		s.failResume(rec)
		return protoErr(gateway.CloseInvalidSeq, "invalid seq")
	case seq+1 < ss.ring.oldestSeq():
		// The dispatches after seq are no longer buffered: the session cannot resume.
		s.endSession(ss)
		s.failResume(rec)
		c.send(invalidSessionFrame(false))
		return nil
	}
	rec.Replayed = s.attachResumed(c, ss, seq)
	rec.OK = true
	s.stats.Resumes++
	s.resumes = append(s.resumes, rec)
	return nil
}

func (s *Server) failResume(rec ResumeRecord) {
	s.stats.FailedResumes++
	s.resumes = append(s.resumes, rec)
}

// attachResumed moves ss onto c (closing a connection still attached to it),
// replays what came after seq and sends RESUMED. It returns the replay count.
func (s *Server) attachResumed(c *conn, ss *session, seq int) int {
	if old := ss.conn; old != nil && old != c {
		s.detach(ss, time.Now())
		old.sess = nil
		old.log().Info("session resumed on another connection: closing this one", "session_id", ss.id)
		old.enqueue(outMsg{kind: outClose, code: gateway.CloseSessionTimedOut, reason: "session resumed elsewhere"})
	}
	ss.conn, c.sess = c, ss
	c.setSessionLog(ss)
	ss.disconnectedAt = time.Time{}
	ss.wireSeq = seq
	replay := ss.ring.since(seq)
	for i := range replay {
		s.sendOnConn(ss, &replay[i], nil)
	}
	s.markLive(ss)
	s.dispatchToSession(ss, typResumed, []byte(`{"_trace":`+fakeTrace+`}`))
	return len(replay)
}

// handleCommand accepts the other client commands (3, 4, 8, 31, 43) once the
// connection has a session; before that they are 4003.
func (s *Server) handleCommand(c *conn, f clientFrame) *ProtocolError {
	s.mu.Lock()
	authed := c.sess != nil
	s.mu.Unlock()
	if !authed {
		return protoErr(gateway.CloseNotAuthenticated, "not authenticated")
	}
	if !isObject(f.D) {
		return protoErr(gateway.CloseUnknownOpcode, "invalid payload for opcode")
	}
	s.recordCommand(c, f)
	if f.Op == gateway.OpRequestGuildMembers {
		return s.handleRequestGuildMembers(c, f.D)
	}
	return nil
}
