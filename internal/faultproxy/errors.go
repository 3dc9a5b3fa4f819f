package faultproxy

import "github.com/shardfleet/shardfleet/pkg/gateway"

var (
	// ErrInvalidConfig is wrapped by every *ConfigError.
	ErrInvalidConfig = gateway.ErrInvalidConfig
)

// ConfigError is the project's one configuration error (gateway.ConfigError).
type ConfigError = gateway.ConfigError
