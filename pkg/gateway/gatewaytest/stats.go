package gatewaytest

import (
	"encoding/json"
	"time"
)

// Stats are the recorded invariants; the JSON names are the /_fake/stats contract.
type Stats struct {
	Identifies            int `json:"identifies"`
	IdentifyViolations    int `json:"identify_violations"`
	Resumes               int `json:"resumes"`
	FailedResumes         int `json:"failed_resumes"`
	DuplicateSessions     int `json:"duplicate_sessions"` // times two sessions of one (shard, count) were live at once
	LiveSessions          int `json:"live_sessions"`
	DispatchesSent        int `json:"dispatches_sent"`
	SequenceGaps          int `json:"sequence_gaps"`
	FatalCloses           int `json:"fatal_closes"`
	Connections           int `json:"connections"` // currently open websockets
	SessionStartRemaining int `json:"session_start_remaining"`

	// DispatchesBuffered counts dispatches routed to a disconnected session
	// (kept for its RESUME).
	DispatchesBuffered int `json:"dispatches_buffered"`
	// TokenResets counts the times the session start limit ran out and the
	// fake reset the bot token (TokenRevoked until RestoreToken).
	TokenResets  int  `json:"token_resets"`
	TokenRevoked bool `json:"token_revoked"`
}

// IdentifyRecord is one IDENTIFY the fake received (that passed the token,
// intents and shard checks).
type IdentifyRecord struct {
	Time       time.Time `json:"time"`
	ShardID    int       `json:"shard_id"`
	ShardCount int       `json:"shard_count"`
	Key        int       `json:"key"` // shard % max_concurrency
	SessionID  string    `json:"session_id"`
	Violation  bool      `json:"violation"` // came sooner than IdentifyWindow after the last one of its key: got op 9 false
	// Presence is IDENTIFY's presence as sent, or absent.
	Presence json.RawMessage `json:"presence,omitempty"`
}

// ResumeRecord is one RESUME the fake received.
type ResumeRecord struct {
	Time       time.Time `json:"time"`
	SessionID  string    `json:"session_id"`
	ShardID    int       `json:"shard_id"`
	ShardCount int       `json:"shard_count"`
	Seq        int       `json:"seq"`      // the seq the client sent
	Replayed   int       `json:"replayed"` // dispatches replayed before RESUMED
	OK         bool      `json:"ok"`       // false: op 9 false or 4007
	URLPath    string    `json:"url_path"` // path the client connected to (resume_gateway_url's is distinct)
}

// CloseRecord is a close the fake sent (fatal or not) or received. A TCP drop
// is recorded as 1006 (FromClient: who dropped it). One close is recorded
// per connection, the one that came first: a client's echo of the fake's
// close is not recorded, and when the client's close came first the fake's
// is not (it was never sent), even when the fake decided on it before it
// had looked at the client's: a RESUME elsewhere, say, that makes the fake
// close with 4009 a connection the client has just closed itself.
type CloseRecord struct {
	Time       time.Time `json:"time"`
	ShardID    int       `json:"shard_id"`
	Code       int       `json:"code"`
	FromClient bool      `json:"from_client"`
	// Reason is the close frame's reason text. It tells apart the fake's
	// two 4009s: "heartbeat timeout" and "session resumed elsewhere" (the
	// latter on a connection whose session a RESUME took over, so ShardID
	// is -1 there).
	Reason string `json:"reason,omitempty"`
}

// DuplicateRecord is one time a session became live while another session of
// the same (shard, count) was live: the same events reach two clients.
type DuplicateRecord struct {
	Time           time.Time `json:"time"`
	ShardID        int       `json:"shard_id"`
	ShardCount     int       `json:"shard_count"`
	SessionID      string    `json:"session_id"`       // the session that became live
	LiveSessionIDs []string  `json:"live_session_ids"` // the sessions already live
	// Ended is when at most one session of the shard was live again (zero
	// while the overlap lasts). Ended - Time is how long the shard was served
	// twice.
	Ended time.Time `json:"ended"`
}

// SessionInfo describes one session.
type SessionInfo struct {
	ID         string `json:"id"`
	ShardID    int    `json:"shard_id"`
	ShardCount int    `json:"shard_count"`
	Seq        int    `json:"seq"`       // last seq sent
	Connected  bool   `json:"connected"` // a websocket is attached now
	Ended      bool   `json:"ended"`
}

// SentEvent is one dispatch the fake sent (or buffered) on a session.
type SentEvent struct {
	SessionID string          `json:"session_id"`
	ShardID   int             `json:"shard_id"`
	Seq       int             `json:"seq"`
	Type      string          `json:"type"`
	Data      json.RawMessage `json:"-"`
}

// Stats returns the counters now.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	for _, n := range s.liveByKey {
		st.LiveSessions += n
	}
	st.Connections = len(s.conns)
	s.refreshSessionStarts(time.Now())
	st.SessionStartRemaining = s.remaining
	st.TokenRevoked = s.tokenRevoked
	return st
}

// Identifies returns every IDENTIFY record, oldest first.
func (s *Server) Identifies() []IdentifyRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]IdentifyRecord(nil), s.identifies...)
}

// Resumes returns every RESUME record, oldest first.
func (s *Server) Resumes() []ResumeRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ResumeRecord(nil), s.resumes...)
}

// Closes returns every close record, oldest first.
func (s *Server) Closes() []CloseRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]CloseRecord(nil), s.closes...)
}

// Duplicates returns every duplicate-session record, oldest first.
func (s *Server) Duplicates() []DuplicateRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]DuplicateRecord(nil), s.duplicates...)
	for i := range out {
		out[i].LiveSessionIDs = append([]string(nil), out[i].LiveSessionIDs...)
	}
	return out
}

// Sessions describes every session ever started, oldest first. A
// disconnected session past ResumeTimeout shows as ended.
func (s *Server) Sessions() []SessionInfo {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SessionInfo, len(s.sessionOrder))
	for i, ss := range s.sessionOrder {
		if !ss.ended && ss.expired(now, s.cfg.ResumeTimeout) {
			s.endSession(ss)
		}
		out[i] = ss.info()
	}
	return out
}

// SentEvents returns the dispatches of a session, oldest first: the last
// ReplayBuffer of them (READY, GUILD_CREATE and RESUMED included), whether
// they were sent or buffered while it was disconnected. Unknown session: nil.
func (s *Server) SentEvents(sessionID string) []SentEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[sessionID]
	if ss == nil {
		return nil
	}
	return ss.ring.all()
}

// RestoreToken undoes a token reset (after the session start limit ran out)
// and refills session_start_limit.remaining.
func (s *Server) RestoreToken() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenRevoked = false
	s.remaining = s.cfg.SessionStartTotal
	s.startWindow = time.Time{}
}
