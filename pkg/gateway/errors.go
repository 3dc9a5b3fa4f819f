package gateway

import (
	"errors"
	"fmt"
)

// Sentinel errors.
var (
	// ErrAlreadyOpen: Open was called on a gateway that is open or opening.
	ErrAlreadyOpen = errors.New("gateway: already open")
	// ErrNotReady: Send was called before READY/RESUMED or after a close.
	ErrNotReady = errors.New("gateway: shard not ready")
	// ErrPayloadTooLarge: an outgoing payload is over MaxPayloadSize; nothing was sent.
	ErrPayloadTooLarge = errors.New("gateway: payload over 4096 bytes")
	// ErrClosed: the gateway was closed by its owner.
	ErrClosed = errors.New("gateway: closed")
	// ErrInvalidSession: op 9 arrived while opening.
	ErrInvalidSession = errors.New("gateway: invalid session")
	// ErrReconnectRequested: op 7 arrived while opening.
	ErrReconnectRequested = errors.New("gateway: reconnect requested")
	// ErrZombie: no heartbeat ACK arrived between two heartbeats.
	ErrZombie = errors.New("gateway: no heartbeat ACK (zombie connection)")
	// ErrReadyTimeout: neither READY nor RESUMED (nor op 7/9) arrived within
	// ReadyTimeout of IDENTIFY or RESUME; the connection is replaced.
	ErrReadyTimeout = errors.New("gateway: no READY or RESUMED in time")
	// ErrInvalidConfig: a configuration is invalid; the error is a
	// *ConfigError naming the package and the field. Every package of the
	// project uses this one sentinel and this one type.
	ErrInvalidConfig = errors.New("shardfleet: invalid config")

	// errWriteFailed marks a websocket write that failed: the socket is
	// broken, and a close frame the read loop got meanwhile says why.
	errWriteFailed = errors.New("write")
)

// ConfigError is the project's one configuration error: the package that
// rejected a configuration, the field, and why. Every package's ConfigError
// is this type, and it matches ErrInvalidConfig with errors.Is.
//
// A program that reads its configuration from settings (cmd/worker: an
// environment variable and its flag) fills Setting, and Value when it may be
// shown; the message then names the setting to fix instead of the field.
type ConfigError struct {
	Package string // e.g. "gateway", "sharding", "redislimiter"
	Field   string
	Reason  string
	Setting string // e.g. "LEASE_TTL (-lease-ttl)"; empty in a library's own error
	Value   string // the setting's offending value; empty when unknown or secret
}

func (e *ConfigError) Error() string {
	if e.Setting == "" {
		return fmt.Sprintf("%s: invalid config: %s: %s", e.Package, e.Field, e.Reason)
	}
	setting, reason := e.Setting, e.Reason
	if e.Value != "" {
		setting += fmt.Sprintf("=%q", e.Value)
	}
	if e.Field != "" {
		reason = e.Field + " " + reason
	}
	return fmt.Sprintf("config: %s: %s", setting, reason)
}

// NewConfigError returns the *ConfigError of pkg's field.
func NewConfigError(pkg, field, reason string) *ConfigError {
	return &ConfigError{Package: pkg, Field: field, Reason: reason}
}

// NewSettingError returns the *ConfigError of a program's setting, given as
// its environment variable and flag, e.g. "LEASE_TTL (-lease-ttl)". value is
// shown in the message unless empty (leave it empty for secrets).
func NewSettingError(setting, value, reason string) *ConfigError {
	return &ConfigError{Setting: setting, Value: value, Reason: reason}
}

// ForSetting returns a copy of e that names setting, the program setting that
// feeds e's field, keeping e's reason.
func (e *ConfigError) ForSetting(setting string) *ConfigError {
	c := *e
	c.Setting = setting
	return &c
}

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// HTTPError is a non-200 answer from Discord's REST API.
type HTTPError struct {
	Status int
}

func (e *HTTPError) Error() string { return fmt.Sprintf("gateway: http status %d", e.Status) }

// MaxPayloadSize is the largest payload Discord accepts from a client.
const MaxPayloadSize = 4096

// Close codes this package sends.
const (
	// CloseCodeNormal ends the session (Discord invalidates it).
	CloseCodeNormal = 1000
	// CloseCodeGoingAway also ends the session.
	CloseCodeGoingAway = 1001
	// CloseCodeHandoff closes a connection whose session another connection
	// will RESUME; anything but 1000/1001 keeps the session.
	CloseCodeHandoff = 4900
	// CloseCodeZombie closes a connection that stopped ACKing heartbeats.
	CloseCodeZombie = 4000
	// CloseCodeReconnect closes a connection that will be replaced: after op 7
	// or op 9, a failed handshake, or an Open abandoned when its ctx ended.
	CloseCodeReconnect = 4901
	// CloseCodeProtocolError closes a connection that sent a message the
	// client cannot decode (bad JSON, corrupt compressed stream); the session
	// is kept and resumed.
	CloseCodeProtocolError = 4902
)

// Discord's gateway close codes.
const (
	CloseUnknownError         = 4000
	CloseUnknownOpcode        = 4001
	CloseDecodeError          = 4002
	CloseNotAuthenticated     = 4003
	CloseAuthenticationFailed = 4004
	CloseAlreadyAuthenticated = 4005
	CloseInvalidSeq           = 4007
	CloseRateLimited          = 4008
	CloseSessionTimedOut      = 4009
	CloseInvalidShard         = 4010
	CloseShardingRequired     = 4011
	CloseInvalidAPIVersion    = 4012
	CloseInvalidIntents       = 4013
	CloseDisallowedIntents    = 4014
)

// CloseAction is what a client must do after a close.
type CloseAction int

const (
	// ActionResume: reconnect and RESUME the session.
	ActionResume CloseAction = iota
	// ActionReidentify: reconnect and IDENTIFY a new session.
	ActionReidentify
	// ActionStop: do not reconnect; report the error (fatal).
	ActionStop
)

func (a CloseAction) String() string {
	switch a {
	case ActionResume:
		return "resume"
	case ActionReidentify:
		return "reidentify"
	case ActionStop:
		return "stop"
	}
	return "unknown"
}

// CloseCodeAction maps a close code received from the server to the client's
// action (reference §5): 4003, 4007, 4009 start a new session; 4004 and
// 4010-4014 are fatal; every other code, no code and 1006 resume.
func CloseCodeAction(code int) CloseAction {
	switch code {
	case CloseNotAuthenticated, CloseInvalidSeq, CloseSessionTimedOut:
		return ActionReidentify
	case CloseAuthenticationFailed, CloseInvalidShard, CloseShardingRequired,
		CloseInvalidAPIVersion, CloseInvalidIntents, CloseDisallowedIntents:
		return ActionStop
	}
	return ActionResume
}

// CloseError is a close frame received from the server.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("gateway: closed by server with %d %q (%s)", e.Code, e.Reason, e.Action())
}

// Action is what the client must do after this close.
func (e *CloseError) Action() CloseAction { return CloseCodeAction(e.Code) }

// Fatal reports whether the close forbids reconnecting.
func (e *CloseError) Fatal() bool { return e.Action() == ActionStop }

// CloseStatus returns the close code carried by err, or -1 when err holds no *CloseError.
func CloseStatus(err error) int {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

// IsFatal reports whether err holds a fatal *CloseError.
func IsFatal(err error) bool {
	var ce *CloseError
	return errors.As(err, &ce) && ce.Fatal()
}

var (
	errRequestMembersNeedsFilter = errors.New("gateway: request guild members needs Query or UserIDs")
	errNonceTooLong              = errors.New("gateway: request guild members nonce over 32 bytes")
)
