package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/testutil"
)

// EVENTS=stdout: `worker -sim` writes every dispatch to stdout as a JSON
// line (what `| jq` needs), and nothing else goes there.
func TestSimEventsOnStdout(t *testing.T) {
	cfg, err := parseConfig([]string{"-sim", "-shard-count", "2", "-identify-window", "50ms",
		"-sim-events-per-second", "200", "-summary-interval", "0", "-http-addr", ""}, envOf("EVENTS", "stdout"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var stdout testutil.LogBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), &stdout) }()
	seen := map[string]bool{}
	poll(t, "READY of both shards and a MESSAGE_CREATE on stdout", 20*time.Second, func() bool {
		for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
			if line == "" {
				continue
			}
			var ev eventLine
			if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Type == "" || len(ev.Data) == 0 {
				t.Fatalf("stdout line is not an event: %q (%v)", line, err)
			}
			if ev.Type == "READY" {
				seen[ev.Type+string(rune('0'+ev.ShardID))] = true
			}
			seen[ev.Type] = true
		}
		return seen["READY0"] && seen["READY1"] && seen["MESSAGE_CREATE"]
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

func TestEventsSettingIsChecked(t *testing.T) {
	_, err := parseConfig([]string{"-sim"}, envOf("EVENTS", "stderr"), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "EVENTS (-events)") || !strings.Contains(err.Error(), "want none or stdout") {
		t.Fatalf("EVENTS=stderr: %v", err)
	}
}
