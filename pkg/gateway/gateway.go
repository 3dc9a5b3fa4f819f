package gateway

import (
	"context"
	"encoding/json"
	"time"
)

// Version is the Discord gateway API version this package speaks.
const Version = 10

// DefaultURL is Discord's gateway bootstrap URL, used when neither WithURL nor
// WithAPIURL gives another one.
const DefaultURL = "wss://gateway.discord.gg"

// DefaultAPIURL is Discord's REST base.
const DefaultAPIURL = "https://discord.com/api/v10"

// EventType is the name of a dispatch (op 0 `t`), e.g. "MESSAGE_CREATE".
type EventType string

// Dispatches the connection decodes itself. Every other type is passed through
// to the EventHandlerFunc untouched.
const (
	EventTypeReady       EventType = "READY"
	EventTypeResumed     EventType = "RESUMED"
	EventTypeGuildCreate EventType = "GUILD_CREATE"
)

// EventHandlerFunc receives every dispatch of a shard, READY and RESUMED included,
// in sequence order. data is the raw JSON of `d`; it is not reused, so the handler
// may keep it. Handlers run on one goroutine per shard, never on the read loop, so
// a slow handler delays later events of its shard but never heartbeats or ACKs.
type EventHandlerFunc func(gateway Gateway, eventType EventType, sequenceNumber int, data json.RawMessage)

// CloseHandlerFunc is called when a shard stops for good on its own: a fatal close
// code (4004, 4010-4014), or a failed reconnect when AutoReconnect is off.
// reconnect reports whether the error would have allowed a reconnect.
type CloseHandlerFunc func(gateway Gateway, err error, reconnect bool)

// CreateFunc builds a Gateway; New is the default. The sharding package takes one
// so tests and users can wrap or replace connections.
type CreateFunc func(token string, eventHandlerFunc EventHandlerFunc, opts ...ConfigOpt) Gateway

// IdentifyLimiter paces IDENTIFYs. Any value with these two methods fits:
// sharding.RateLimiter, redislimiter.Limiter, and disgo v0.18's sharding.RateLimiter.
// WaitBucket is called after HELLO and before every IDENTIFY (reconnects included,
// never before a RESUME); UnlockBucket follows once IDENTIFY is written or failed.
// A WaitBucket error ends the connection attempt; when the error (or one it
// wraps) has a RetryAfter() time.Duration method, the next attempt waits at
// least that long instead of the reconnect backoff alone (redislimiter's
// BudgetError: until the daily identify budget resets).
type IdentifyLimiter interface {
	WaitBucket(ctx context.Context, shardID int) error
	UnlockBucket(shardID int)
}

// ShardState is what a new connection needs to RESUME a session another
// connection (maybe in another process) started: a cold resume. The zero value
// means "no session": the shard will IDENTIFY.
type ShardState struct {
	SessionID string `json:"session_id"`
	Sequence  int    `json:"seq"`
	ResumeURL string `json:"resume_url"`
}

// Resumable reports whether the state names a session to RESUME.
func (s ShardState) Resumable() bool { return s.SessionID != "" }

// Gateway is one shard's connection to Discord.
//
// All methods are safe for concurrent use.
type Gateway interface {
	// ShardID is this connection's shard ID.
	ShardID() int
	// ShardCount is the shard count this connection identifies with.
	ShardCount() int
	// SessionID is the current session, or nil.
	SessionID() *string
	// LastSequenceReceived is the last dispatch sequence received, or nil;
	// after a Handoff that left events unhandled, the last one handled (the
	// sequence the next RESUME starts from, so they are replayed).
	LastSequenceReceived() *int
	// ResumeURL is the session's resume_gateway_url, or nil.
	ResumeURL() *string
	// Intents the connection identifies with.
	Intents() Intents
	// State returns the session, sequence and resume URL as one consistent value.
	State() ShardState

	// Open connects and returns once READY or RESUMED is received, or with the
	// error that stopped it. With AutoReconnect it retries retryable failures with
	// backoff until ctx ends; fatal closes (4004, 4010-4014) return at once as a
	// *CloseError. Opening an open gateway returns ErrAlreadyOpen.
	Open(ctx context.Context) error
	// Close ends the session: it closes with 1000, so Discord drops the session.
	// Use it when the bot shuts down for real. It waits for the connection's
	// goroutines to stop, bounded by ctx.
	Close(ctx context.Context)
	// CloseWithCode closes with the given code. Codes other than 1000/1001 keep
	// the session resumable.
	CloseWithCode(ctx context.Context, code int, reason string)
	// Handoff closes the connection with CloseCodeHandoff, which keeps the session
	// resumable, and returns the state another connection needs to RESUME it.
	Handoff(ctx context.Context) ShardState

	// Status is the connection's current status.
	Status() Status
	// Send writes a command, through the send rate limiter (120 per 60 s, with
	// slots kept for heartbeat, identify and resume). data is encoded as JSON;
	// a payload over 4096 bytes is ErrPayloadTooLarge, and nothing is sent.
	Send(ctx context.Context, op Opcode, data any) error
	// SendTracked is Send that also returns the command's Receipt, which
	// tells once Discord has read it, or that its connection ended first
	// (a written command may be lost with the connection: a write only
	// hands it to the kernel).
	SendTracked(ctx context.Context, op Opcode, data any) (Receipt, error)
	// Latency is the round trip of the last acknowledged heartbeat (0 before one).
	Latency() time.Duration
}
