package faultproxy

import "errors"

var (
	// ErrInvalidConfig is wrapped by every *ConfigError.
	ErrInvalidConfig = errors.New("faultproxy: invalid config")
)

// ConfigError names the Config field New rejected.
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string { return "faultproxy: config " + e.Field + ": " + e.Reason }

// Unwrap makes errors.Is(err, ErrInvalidConfig) true.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }
