package worker

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/shardfleet/shardfleet/internal/testutil"
)

// TestFleetCountsAndLogsAFatalCloseOnce: a bad token closes each shard with
// 4004 once; the worker counts each close once and it reaches the log once
// (the gateway, the shard manager and a failed open all see it: one owner
// reports it).
func TestFleetCountsAndLogsAFatalCloseOnce(t *testing.T) {
	const shards = 2
	h := newHarness(t, shards)
	cfg := h.config("w1", shards)
	cfg.Token = "not-the-token"
	var logs testutil.LogBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w1 := h.start(cfg)
	eventually(t, "every shard fatal", 20*time.Second, func() bool {
		ss := w1.w.Status().Shards
		return len(ss) == shards && ss[0].Status == "fatal" && ss[1].Status == "fatal"
	})
	closes := 0
	for _, c := range h.fake.Closes() {
		if c.Code == 4004 && !c.FromClient {
			closes++
		}
	}
	if closes != shards {
		t.Fatalf("the fake closed %d sessions with 4004, want %d", closes, shards)
	}
	var fatal dto.Metric
	if _ = w1.w.m.fatal.Write(&fatal); fatal.GetCounter().GetValue() != shards {
		t.Errorf("shardfleet_fatal_closes_total = %v, want %d", fatal.GetCounter().GetValue(), shards)
	}
	lines := 0
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
			if strings.Contains(line, "4004") || strings.Contains(line, "uthentication failed") {
				lines++
			}
		}
	}
	if lines != shards {
		t.Errorf("%d warn/error lines report the 4004 closes, want %d:\n%s", lines, shards, logs.String())
	}
}
