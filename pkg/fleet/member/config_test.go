package member

import (
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Every invalid field is refused by New as a *gateway.ConfigError naming
// that field, whether Member or the worker under it checks it.
func TestNewNamesTheInvalidField(t *testing.T) {
	for _, tc := range []struct {
		field string
		set   func(*Config)
	}{
		{"Token", func(c *Config) { c.Token = "" }},
		{"LeaseTTL", func(c *Config) { c.LeaseTTL = 0 }},
		{"LeaseRenewInterval", func(c *Config) { c.LeaseRenewInterval = -1 }},
		{"LeaseRenewDeadline", func(c *Config) { c.LeaseRenewDeadline = 0 }},
		{"EventStreamMaxLen", func(c *Config) { c.EventStreamMaxLen = -1 }},
		{"EventBatchSize", func(c *Config) { c.EventBatchSize = 0 }},
		{"EventFlushInterval", func(c *Config) { c.EventFlushInterval = -1 }},
		{"ShardCount", func(c *Config) { c.ShardCount = -1 }},
		{"IdentifyWindow", func(c *Config) { c.IdentifyWindow = 0 }},
		{"BacklogWorkerBytes", func(c *Config) { c.BacklogWorkerBytes = c.BacklogShardBytes - 1 }},
		{"Logger", func(c *Config) { c.Logger = nil }},
	} {
		cfg := DefaultConfig()
		cfg.Token = "secret-token"
		tc.set(&cfg)
		_, err := New(cfg)
		var ce *gateway.ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field || !errors.Is(err, gateway.ErrInvalidConfig) {
			t.Errorf("%s: New returned %v; want a *gateway.ConfigError naming %s", tc.field, err, tc.field)
		}
	}
	cfg := DefaultConfig()
	cfg.Token = "secret-token"
	if _, err := New(cfg); err != nil {
		t.Fatalf("the defaults with a token: %v", err)
	}
}
