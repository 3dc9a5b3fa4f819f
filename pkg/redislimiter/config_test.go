package redislimiter

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/internal/redistest"
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

// TestPrefixAgreesWithTheWorkers: a Go program given the workers' KEY_PREFIX
// ("app:", as a user writes it) shares their limiter. The workers build theirs
// from the fleet's normalised prefix; before one rule served both, the program
// got "{app:}:" and a second limiter on the same Redis, and IDENTIFYed too fast.
func TestPrefixAgreesWithTheWorkers(t *testing.T) {
	client := newClient(t, redistest.Start(t).Addr())
	const userPrefix = "app:"
	workers := newLimiter(t, client, append(testOpts(keyspace.NewKeys(userPrefix).Prefix(), 1), WithWindow(2*time.Second))...)
	program := newLimiter(t, client, append(testOpts(userPrefix, 1), WithWindow(2*time.Second))...)
	if err := workers.WaitBucket(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	workers.UnlockBucket(0) // the bucket now cools down for 2 s
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := program.WaitBucket(ctx, 0); err == nil {
		t.Fatal("the program was granted the bucket the workers had just used: two limiters on one Redis")
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
