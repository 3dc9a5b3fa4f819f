package faultproxy

import (
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// Config configures a Proxy. DefaultConfig holds the defaults; New validates once.
type Config struct {
	// Upstream is the host:port every connection is forwarded to. Required.
	Upstream string
	// ListenAddr is where the proxy listens. Default "127.0.0.1:0" (a free
	// loopback port; Addr reports it).
	ListenAddr string
	// DialTimeout bounds the dial to Upstream for each accepted connection.
	// Default 2 s.
	DialTimeout time.Duration
	// BufferSize is the copy buffer per direction of a connection. Default 32 KiB.
	BufferSize int
}

// Option changes a Config.
type Option func(*Config)

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{ListenAddr: "127.0.0.1:0", DialTimeout: 2 * time.Second, BufferSize: 32 << 10}
}

// WithListenAddr sets Config.ListenAddr.
func WithListenAddr(addr string) Option { return func(c *Config) { c.ListenAddr = addr } }

// WithDialTimeout sets Config.DialTimeout.
func WithDialTimeout(d time.Duration) Option { return func(c *Config) { c.DialTimeout = d } }

// WithBufferSize sets Config.BufferSize.
func WithBufferSize(n int) Option { return func(c *Config) { c.BufferSize = n } }

func (c *Config) validate() error {
	switch {
	case c.Upstream == "":
		return gateway.NewConfigError("faultproxy", "Upstream", "is empty")
	case c.ListenAddr == "":
		return gateway.NewConfigError("faultproxy", "ListenAddr", "is empty")
	case c.DialTimeout <= 0:
		return gateway.NewConfigError("faultproxy", "DialTimeout", "must be positive")
	case c.BufferSize < 1:
		return gateway.NewConfigError("faultproxy", "BufferSize", "must be at least 1")
	}
	return nil
}
