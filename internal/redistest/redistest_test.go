package redistest

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestRestartLosesData(t *testing.T) {
	s := Start(t)
	c := s.Client(t)
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Restart(t)
	if err := c.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("after restart: got %v, want redis.Nil", err)
	}
}

func TestCluster(t *testing.T) {
	cl := StartCluster(t, 3)
	c := cl.Client(t)
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c", "{x}1", "{x}2"} {
		if err := c.Set(ctx, k, k, 0).Err(); err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
	}
	if err := c.Get(ctx, "{x}2").Err(); err != nil {
		t.Fatal(err)
	}
}

func TestCommandCalls(t *testing.T) {
	s := Start(t)
	c := s.Client(t)
	ctx := context.Background()
	script := redis.NewScript(`return redis.call('INCR', KEYS[1])`)
	for range 3 {
		if err := script.Run(ctx, c, []string{"n"}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	calls, err := s.CommandCalls(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The first EVALSHA finds no script (NOSCRIPT) and go-redis falls back to EVAL.
	if calls["evalsha"]+calls["eval"] < 3 || calls["incr"] != 3 {
		t.Fatalf("calls = %v, want 3 script runs and 3 INCRs", calls)
	}
}
