package sharding

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

const secretToken = "Bot-secret-token-do-not-log"

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if c.Logger == nil || c.ShardSplitCount != ShardSplitCount || c.AutoScaling || c.ShardCount != 0 ||
		c.ShardIDs != nil || c.GatewayCreateFunc == nil || c.RateLimiter != nil ||
		c.APIURL != gateway.DefaultAPIURL || c.HTTPClient != http.DefaultClient {
		t.Fatalf("DefaultConfig = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
}

func TestWithShardIDsReplaces(t *testing.T) {
	c := DefaultConfig()
	c.Apply([]ConfigOpt{WithShardIDs(1, 2, 3), WithShardIDs(7)})
	if len(c.ShardIDs) != 1 {
		t.Fatalf("ShardIDs = %v, want only 7", c.ShardIDs)
	}
	if _, ok := c.ShardIDs[7]; !ok {
		t.Fatalf("ShardIDs = %v, want only 7", c.ShardIDs)
	}
	c.Apply([]ConfigOpt{WithShardIDs()})
	if c.ShardIDs != nil {
		t.Fatalf("WithShardIDs() = %v, want nil (all shards)", c.ShardIDs)
	}
}

// Two configs derived from one base never share the appended options (disgo's
// append-aliasing race, PR #484).
func TestWithGatewayConfigOptsNoAliasing(t *testing.T) {
	base := make([]gateway.ConfigOpt, 1, 8)
	base[0] = gateway.WithShardID(0)
	a, b := &Config{GatewayConfigOpts: base}, &Config{GatewayConfigOpts: base}
	var gotA, gotB gateway.Config
	WithGatewayConfigOpts(gateway.WithLargeThreshold(100))(a)
	WithGatewayConfigOpts(gateway.WithLargeThreshold(200))(b)
	gotA.Apply(a.GatewayConfigOpts)
	gotB.Apply(b.GatewayConfigOpts)
	if gotA.LargeThreshold != 100 || gotB.LargeThreshold != 200 {
		t.Fatalf("aliasing: a=%d b=%d, want 100 and 200", gotA.LargeThreshold, gotB.LargeThreshold)
	}
	WithGatewayConfigOpts(gateway.WithShardCount(9))(a)
	if len(a.GatewayConfigOpts) != 3 {
		t.Fatalf("appends: %d options, want 3", len(a.GatewayConfigOpts))
	}
	rc := &Config{RateLimiterConfigOpts: make([]RateLimiterConfigOpt, 0, 4)}
	WithRateLimiterConfigOpt(WithMaxConcurrency(2))(rc)
	WithRateLimiterConfigOpt(WithMaxConcurrency(3))(rc)
	if len(rc.RateLimiterConfigOpts) != 2 {
		t.Fatalf("rate limiter opts append: %d, want 2", len(rc.RateLimiterConfigOpts))
	}
}

func TestConfigValidateNamesField(t *testing.T) {
	tests := []struct {
		opts  []ConfigOpt
		field string
	}{
		{[]ConfigOpt{WithLogger(nil)}, "Logger"},
		{[]ConfigOpt{WithShardCount(-1)}, "ShardCount"},
		{[]ConfigOpt{WithAutoScaling(true), WithShardSplitCount(1)}, "ShardSplitCount"},
		{[]ConfigOpt{WithGatewayCreateFunc(nil)}, "GatewayCreateFunc"},
		{[]ConfigOpt{WithHTTPClient(nil)}, "HTTPClient"},
		{[]ConfigOpt{WithShardIDs(-1)}, "ShardIDs"},
		{[]ConfigOpt{WithShardCount(4), WithShardIDs(0, 4)}, "ShardIDs"},
		{[]ConfigOpt{WithAPIURL("not a url")}, "APIURL"},
		{[]ConfigOpt{WithAPIURL("ftp://x/api")}, "APIURL"},
		{[]ConfigOpt{WithGatewayConfigOpts(nil)}, "GatewayConfigOpts"},
		{[]ConfigOpt{WithRateLimiterConfigOpt(WithMaxConcurrency(0))}, "RateLimiterConfig.MaxConcurrency"},
	}
	for _, tc := range tests {
		_, err := NewFleet(secretToken, nil, tc.opts...)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field || !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewFleet with bad %s: %v", tc.field, err)
			continue
		}
		if strings.Contains(err.Error(), secretToken) {
			t.Errorf("error holds the token: %v", err)
		}
	}
	// A split count of 1 is fine without AutoScaling (it is never used).
	if _, err := NewFleet(secretToken, nil, WithShardSplitCount(1)); err != nil {
		t.Errorf("split count without autoscaling: %v", err)
	}
	// A user limiter makes the rate limiter options irrelevant.
	if _, err := NewFleet(secretToken, nil, WithRateLimiter(NewNoopRateLimiter()),
		WithRateLimiterConfigOpt(WithMaxConcurrency(0))); err != nil {
		t.Errorf("bad limiter opts with a user limiter: %v", err)
	}
}

// New has no error in the seed: the config error is logged and returned by
// every open, never with the token.
func TestNewInvalidConfigReportedByOpen(t *testing.T) {
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	m := New("", nil, WithLogger(logger), WithShardCount(1))
	if err := m.OpenShard(t.Context(), 0); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("OpenShard = %v, want ErrInvalidConfig", err)
	}
	m.Open(t.Context())
	fm := m.(FleetShardManager)
	var ce *ConfigError
	if err := fm.LastOpenError(); !errors.As(err, &ce) || ce.Field != "token" {
		t.Fatalf("LastOpenError = %v, want a ConfigError on token", err)
	}
	if !strings.Contains(logs.String(), "token") {
		t.Fatalf("config error not logged: %q", logs.String())
	}
	m.Close(t.Context())

	m2 := New(secretToken, nil, WithLogger(logger), WithShardCount(-5))
	if err := m2.OpenShard(t.Context(), 0); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("OpenShard = %v", err)
	}
	m2.Close(t.Context())
	if strings.Contains(logs.String(), secretToken) {
		t.Fatal("the token was logged")
	}
}

// The manager orders each bucket's shards by the limiter's max_concurrency:
// the one a user limiter reports, else WithMaxConcurrency, else 1.
func TestManagerMaxConcurrencySource(t *testing.T) {
	discard := WithLogger(slog.New(slog.DiscardHandler))
	user := NewRateLimiter(WithMaxConcurrency(4))
	defer user.Close(t.Context())
	tests := []struct {
		name string
		opts []ConfigOpt
		want int
	}{
		{"default", nil, 1},
		{"option", []ConfigOpt{WithRateLimiterConfigOpt(WithMaxConcurrency(16))}, 16},
		{"user limiter reports", []ConfigOpt{WithRateLimiter(user)}, 4},
		{"user limiter silent", []ConfigOpt{WithRateLimiter(newCountingLimiter(user)), WithRateLimiterConfigOpt(WithMaxConcurrency(8))}, 8},
	}
	for _, tc := range tests {
		m, err := NewFleet(secretToken, nil, append([]ConfigOpt{discard, WithShardCount(32)}, tc.opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.(*manager).prepare(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := m.(*manager).mc; got != tc.want {
			t.Errorf("%s: max concurrency %d, want %d", tc.name, got, tc.want)
		}
		m.Close(t.Context())
	}
}
