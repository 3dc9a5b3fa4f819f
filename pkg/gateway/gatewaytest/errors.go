package gatewaytest

import (
	"errors"
	"fmt"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// ErrServerClosed is returned by Server methods that need a running server
// after Close.
var ErrServerClosed = errors.New("gatewaytest: server closed")

// ConfigError is the project's one configuration error (gateway.ConfigError).
type ConfigError = gateway.ConfigError

// ProtocolError is a client payload the fake rejects, with the close code
// Discord would send for it.
type ProtocolError struct {
	Code   int
	Reason string
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("gatewaytest: protocol error %d: %s", e.Code, e.Reason)
}

func protoErr(code int, reason string) *ProtocolError {
	return &ProtocolError{Code: code, Reason: reason}
}
