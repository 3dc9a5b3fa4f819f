package lease

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestConfigValidation(t *testing.T) {
	ok := DefaultConfig()
	tests := []struct {
		name  string
		edit  func(*Config)
		field string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"local", func(c *Config) { *c = LocalConfig() }, ""},
		{"zero config gets defaults", func(c *Config) { *c = Config{} }, ""},
		{"ttl equals deadline", func(c *Config) { c.TTL = c.RenewDeadline }, "TTL"},
		{"ttl below deadline", func(c *Config) { c.TTL = 5 * time.Second }, "TTL"},
		{"ttl sub-millisecond", func(c *Config) { c.TTL = 15*time.Second + time.Microsecond }, "TTL"},
		{"deadline at 1.2 renew", func(c *Config) { c.RenewDeadline = 2400 * time.Millisecond }, "RenewDeadline"},
		{"deadline just above 1.2 renew", func(c *Config) { c.RenewDeadline = 2401 * time.Millisecond }, ""},
		{"renew negative", func(c *Config) { c.RenewInterval = -time.Second }, "RenewInterval"},
		{"moves negative", func(c *Config) { c.MovesPerTick = -1 }, "MovesPerTick"},
		{"jitter negative", func(c *Config) { c.TickJitter = -1 }, "TickJitter"},
		{"tick negative", func(c *Config) { c.TickInterval = -1 }, "TickInterval"},
		{"join grace negative", func(c *Config) { c.JoinGrace = -1 }, "JoinGrace"},
		{"data-loss grace below ttl", func(c *Config) { c.DataLossGrace = c.TTL - time.Millisecond }, "DataLossGrace"},
		{"data-loss grace equal ttl", func(c *Config) { c.DataLossGrace = c.TTL }, ""},
		{"data-loss probe equal renew interval", func(c *Config) { c.DataLossProbe = c.RenewInterval }, "DataLossProbe"},
		{"data-loss probe above grace", func(c *Config) { c.DataLossProbe = c.DataLossGrace + time.Millisecond }, "DataLossProbe"},
		{"revoke timeout negative", func(c *Config) { c.RevokeTimeout = -1 }, "RevokeTimeout"},
		// P7: TTL > RenewDeadline/(1-MaxClockDrift); 10s/(1-0.1) = 11.111s.
		{"drift negative", func(c *Config) { c.MaxClockDrift = -0.01 }, "MaxClockDrift"},
		{"drift one", func(c *Config) { c.MaxClockDrift = 1 }, "MaxClockDrift"},
		{"drift above one", func(c *Config) { c.MaxClockDrift = 1.5 }, "MaxClockDrift"},
		{"drift NaN", func(c *Config) { c.MaxClockDrift = math.NaN() }, "MaxClockDrift"},
		{"drift zero gets the default", func(c *Config) { c.MaxClockDrift = 0; c.TTL = 11111 * time.Millisecond }, "TTL"},
		{"ttl just below deadline/(1-drift)", func(c *Config) { c.TTL = 11111 * time.Millisecond }, "TTL"},
		{"ttl just above deadline/(1-drift)", func(c *Config) { c.TTL = 11112 * time.Millisecond }, ""},
		{"defaults tolerate drift 0.33", func(c *Config) { c.MaxClockDrift = 0.33 }, ""},
		{"defaults reject drift 0.34", func(c *Config) { c.MaxClockDrift = 0.34 }, "TTL"},
		{"local tolerates drift 0.33", func(c *Config) { *c = LocalConfig(); c.MaxClockDrift = 0.33 }, ""},
		{"local rejects drift 0.5", func(c *Config) { *c = LocalConfig(); c.MaxClockDrift = 0.5 }, "TTL"},
		{"tiny drift admits ttl near deadline", func(c *Config) { c.MaxClockDrift = 1e-4; c.TTL = 10002 * time.Millisecond }, ""},
		{"tiny drift still needs ttl above deadline/(1-drift)", func(c *Config) { c.MaxClockDrift = 1e-4; c.TTL = 10001 * time.Millisecond }, "TTL"},
		{"worker id with space", func(c *Config) { c.WorkerID = "a b" }, "WorkerID"},
		{"worker id with brace", func(c *Config) { c.WorkerID = "a{b}" }, "WorkerID"},
		{"worker id too long", func(c *Config) { c.WorkerID = strings.Repeat("x", 129) }, "WorkerID"},
		{"prefix without tag is wrapped", func(c *Config) { c.Prefix = "app" }, ""},
		{"prefix with empty tag", func(c *Config) { c.Prefix = "{}x" }, ""}, // wrapped: "{{}x}:"
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			err := c.withDefaults().validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("want *ConfigError on %s wrapping ErrInvalidConfig, got %v", tt.field, err)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("error %q does not name %s", err, tt.field)
			}
		})
	}
}

// Zero MaxClockDrift means the default (like the zero durations): a config
// built without DefaultConfig still gets the drift check. validate itself
// admits 0, the lower end of [0, 1).
func TestMaxClockDriftZeroMeansDefault(t *testing.T) {
	if got := (Config{}).withDefaults().MaxClockDrift; got != DefaultConfig().MaxClockDrift {
		t.Fatalf("zero MaxClockDrift became %v, want the default %v", got, DefaultConfig().MaxClockDrift)
	}
	c := DefaultConfig()
	c.MaxClockDrift = 0
	c.TTL = c.RenewDeadline + time.Millisecond
	c.DataLossProbe = c.RenewInterval + time.Second // validate sees no defaults
	if err := c.validate(); err != nil {
		t.Fatalf("drift 0 with TTL just above RenewDeadline: %v", err)
	}
}

func TestNewSessionRejectsBadConfig(t *testing.T) {
	_, client := startRedis(t)
	cfg := testConfig("")
	cfg.RenewDeadline = cfg.TTL
	if _, err := NewSession(testCtx(t), client, cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("got %v, want ErrInvalidConfig", err)
	}
	if _, err := NewSession(testCtx(t), nil, testConfig("")); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("nil client: got %v, want ErrInvalidConfig", err)
	}
}
