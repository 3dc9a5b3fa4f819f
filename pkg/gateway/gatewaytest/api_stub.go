package gatewaytest

// API CONTRACT STUB: the exported surface other packages' tests are written
// against. The implementer replaces this file with the real implementation and
// keeps every name and signature (adding more is fine).

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/disgoorg/snowflake/v2"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// Config configures a fake Discord. Every time is configurable.
type Config struct {
	Token                  string          // accepted bot token; default "test-token"
	Shards                 int             // recommended shard count in /gateway/bot; default 1
	MaxConcurrency         int             // session_start_limit.max_concurrency; default 1
	SessionStartTotal      int             // session_start_limit.total; default 1000
	SessionStartResetAfter time.Duration   // session_start_limit.reset_after; default 24h
	IdentifyWindow         time.Duration   // per-key identify window; default 5s
	HeartbeatInterval      time.Duration   // HELLO's interval; default 41250ms
	HeartbeatTimeout       time.Duration   // close a silent client after this; default 1.5 x interval
	HeartbeatTimeoutCode   int             // close code for a late heartbeater; default 4009
	ResumeTimeout          time.Duration   // how long a dropped session stays resumable; default 2m
	Guilds                 int             // number of guilds the bot is in; default 0
	MaxGuildsPerShard      int             // more than this on one shard closes 4011; default 2500
	AllowedIntents         gateway.Intents // bits the bot may use (privileged ones must be here); default all documented
	ReplayBuffer           int             // dispatches kept per session for RESUME; default 10000
	SendLimit              int             // client commands per SendWindow; default 120
	SendWindow             time.Duration   // default 60s
	EventsPerSecond        float64         // steady MESSAGE_CREATE load spread over guilds; default 0
	Logger                 *slog.Logger    // default: discard
}

// Option changes a Config.
type Option func(*Config)

// Server is a running fake Discord (REST + gateway) on loopback.
type Server struct{}

// NewServer starts a fake on 127.0.0.1 on a free port, like httptest.NewServer.
func NewServer(opts ...Option) *Server { panic("unimplemented") }

// Listen starts a fake on addr (for cmd/fakediscord).
func Listen(addr string, opts ...Option) (*Server, error) { panic("unimplemented") }

// Handler is the fake's HTTP handler (REST under /api/v10, gateway, /_fake/ control API).
func (s *Server) Handler() http.Handler { panic("unimplemented") }

func (s *Server) URL() string        { panic("unimplemented") } // http://127.0.0.1:port
func (s *Server) APIURL() string     { panic("unimplemented") } // URL()+"/api/v10"
func (s *Server) GatewayURL() string { panic("unimplemented") } // ws://127.0.0.1:port/gateway
func (s *Server) Token() string      { panic("unimplemented") }
func (s *Server) Close()             { panic("unimplemented") } // closes every connection and the listener; waits for goroutines

// GuildIDs lists the fake's guilds.
func (s *Server) GuildIDs() []snowflake.ID { panic("unimplemented") }

// Dispatch sends a dispatch to every live session of the guild's shard
// ((guildID>>22) % count == shardID, for every count in use); guildID 0 means a
// guild-less event: shard 0 only. data is marshalled as `d`. It returns how many
// sessions got it. Sessions that are disconnected but resumable buffer it for replay.
func (s *Server) Dispatch(eventType string, guildID snowflake.ID, data any) int {
	panic("unimplemented")
}

// Chaos, aimed at every live connection whose shard ID is shardID (any count);
// shardID -1 means every connection. Each returns how many connections it hit.
func (s *Server) SendReconnect(shardID int) int                             { panic("unimplemented") } // op 7
func (s *Server) InvalidateSession(shardID int, resumable bool) int         { panic("unimplemented") } // op 9 d=resumable (false also ends the session)
func (s *Server) CloseConnections(shardID int, code int, reason string) int { panic("unimplemented") }
func (s *Server) DropConnections(shardID int) int                           { panic("unimplemented") } // TCP drop, no close frame
func (s *Server) RequestHeartbeat(shardID int) int                          { panic("unimplemented") } // op 1 from the server
func (s *Server) SendRaw(shardID int, frame []byte, binary bool) int        { panic("unimplemented") } // a raw frame, bypassing compression (garbage injection)
func (s *Server) SetAckHeartbeats(ack bool)                                 { panic("unimplemented") } // false: stop sending op 11
func (s *Server) SetSplitFrames(n int)                                      { panic("unimplemented") } // split each compressed message into n frames (n<=1: off)
func (s *Server) SetEventsPerSecond(rate float64)                           { panic("unimplemented") }

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
}

func (s *Server) Stats() Stats { panic("unimplemented") }

// IdentifyRecord is one IDENTIFY the fake received.
type IdentifyRecord struct {
	Time       time.Time `json:"time"`
	ShardID    int       `json:"shard_id"`
	ShardCount int       `json:"shard_count"`
	Key        int       `json:"key"` // shard % max_concurrency
	SessionID  string    `json:"session_id"`
	Violation  bool      `json:"violation"` // came sooner than IdentifyWindow after the last one of its key: got op 9 false
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

// CloseRecord is a close the fake sent (fatal or not) or received.
type CloseRecord struct {
	Time       time.Time `json:"time"`
	ShardID    int       `json:"shard_id"`
	Code       int       `json:"code"`
	FromClient bool      `json:"from_client"`
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

func (s *Server) Identifies() []IdentifyRecord            { panic("unimplemented") }
func (s *Server) Resumes() []ResumeRecord                 { panic("unimplemented") }
func (s *Server) Closes() []CloseRecord                   { panic("unimplemented") }
func (s *Server) Sessions() []SessionInfo                 { panic("unimplemented") }
func (s *Server) SentEvents(sessionID string) []SentEvent { panic("unimplemented") }
