package redislimiter

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestConfigValidation(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer client.Close()
	tests := []struct {
		opt   ConfigOpt
		field string
	}{
		{WithMaxConcurrency(0), "MaxConcurrency"},
		{WithWindow(0), "Window"},
		{WithMargin(-time.Millisecond), "Margin"},
		{WithKeyPrefix(""), "KeyPrefix"},
		{WithHoldTTL(0), "HoldTTL"},
		{WithPollInterval(0), "PollInterval"},
		{WithTicketTTL(time.Second), "TicketTTL"}, // < 3 x the 1 s default poll
		{WithBudgetReserve(-1), "BudgetReserve"},
		{WithUnlockTimeout(0), "UnlockTimeout"},
		{WithLogger(nil), "Logger"},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			l := New(client, tt.opt)
			var ce *ConfigError
			if err := l.Err(); !errors.As(err, &ce) || ce.Field != tt.field || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Err() = %v, want a ConfigError for %s", err, tt.field)
			}
			if err := l.WaitBucket(context.Background(), 0); !errors.As(err, &ce) {
				t.Fatalf("WaitBucket = %v, want the config error (fail closed)", err)
			}
			l.UnlockBucket(0)             // no panic
			l.Close(context.Background()) // nothing to stop
		})
	}
	if err := New(nil).Err(); err == nil {
		t.Fatal("New(nil) has no error")
	}
}

func TestNormalizePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"{shardfleet}:": "{shardfleet}:",
		"app":           "{app}:",
		"app:{x}:":      "app:{x}:",
		"{}":            "{{}}:", // an empty tag hashes the whole key: wrap it
		"{open":         "{{open}:",
	} {
		if got := normalizePrefix(in); got != want {
			t.Errorf("normalizePrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNegativeShard(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	l := New(client, WithLogger(discard))
	defer l.Close(context.Background())
	if err := l.WaitBucket(context.Background(), -1); err == nil {
		t.Fatal("WaitBucket(-1) = nil")
	}
}
