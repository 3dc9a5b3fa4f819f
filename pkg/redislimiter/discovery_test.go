package redislimiter

import (
	"context"
	"errors"
	"testing"

	"github.com/shardfleet/shardfleet/internal/redistest"
)

func TestStoreLoadMaxConcurrency(t *testing.T) {
	s := redistest.Start(t)
	c := newClient(t, s.Addr())
	ctx := context.Background()
	if _, err := LoadMaxConcurrency(ctx, c, "fleet"); !errors.Is(err, ErrNoMaxConcurrency) {
		t.Fatalf("nothing stored: got %v, want ErrNoMaxConcurrency", err)
	}
	if err := StoreMaxConcurrency(ctx, c, "fleet", 0); err == nil {
		t.Fatal("stored max_concurrency 0")
	}
	if err := StoreMaxConcurrency(ctx, c, "fleet", 16); err != nil {
		t.Fatal(err)
	}
	if n, err := LoadMaxConcurrency(ctx, c, "{fleet}:"); err != nil || n != 16 {
		t.Fatalf("Load = %d, %v; want 16 (prefix wrapped the same way)", n, err)
	}
}
