package worker

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
	"github.com/shardfleet/shardfleet/pkg/sharding"
)

// A wrong token found by GET /gateway/bot (401) behaves as a 4004: the worker
// stays up with no shard, its fatal error names DISCORD_TOKEN, nothing is
// IDENTIFYed, and Run returns nil when stopped.
func TestTokenRejectedByGatewayBot(t *testing.T) {
	for _, mode := range []string{"fleet", "local"} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, 2)
			cfg := h.config("w-401", 0) // shard count 0: ask GET /gateway/bot
			cfg.Token = "not-the-token"
			if mode == "local" {
				cfg.Redis = nil
			}
			r := h.start(cfg)
			eventually(t, "the token rejected", 10*time.Second, func() bool { return r.w.FatalError() != nil })
			err := r.w.FatalError()
			if !errors.Is(err, ErrTokenRejected) || !errors.Is(err, sharding.ErrUnauthorized) ||
				!strings.Contains(err.Error(), "DISCORD_TOKEN") {
				t.Fatalf("fatal error %v, want ErrTokenRejected naming DISCORD_TOKEN", err)
			}
			select {
			case err := <-r.done:
				t.Fatalf("Run returned %v: the worker must stay up, as after a 4004", err)
			default:
			}
			if r.w.Ready() || len(h.fake.Identifies()) != 0 {
				t.Fatalf("ready %v, %d IDENTIFYs with a rejected token", r.w.Ready(), len(h.fake.Identifies()))
			}
			r.stop(t) // fails the test if Run returns an error
		})
	}
}

// Local mode: once one shard proved the token bad (4004), no other shard
// IDENTIFYs with it (OpenAll stops at the fatal close; only the first
// window's IDENTIFYs, sent at once, reach Discord).
func TestLocalStopsIdentifyingAfter4004(t *testing.T) {
	const shards = 4
	h := newHarness(t, shards, gatewaytest.WithMaxConcurrency(2))
	cfg := h.config("w-4004", shards)
	cfg.Redis, cfg.Token, cfg.MaxConcurrency = nil, "not-the-token", 2
	// A window far above the 4004's round trip, so the next permit comes after it.
	cfg.IdentifyWindow = 500 * time.Millisecond
	r := h.start(cfg)
	eventually(t, "4004 reported", 10*time.Second, func() bool { return errors.Is(r.w.FatalError(), ErrTokenRejected) })
	// The next permits would have come one window apart: wait out two.
	deadline := time.Now().Add(2 * (cfg.IdentifyWindow + cfg.IdentifyMargin))
	for time.Now().Before(deadline) {
		if n := len(h.fake.Identifies()); n > cfg.MaxConcurrency { // the first window's, sent at once
			t.Fatalf("%d IDENTIFYs with a token the first one proved bad", n)
		}
		time.Sleep(20 * time.Millisecond) // polling for a violation until the deadline
	}
}
