package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// JSON logs give durations as text, and go-redis's own lines come out as
// JSON lines of the same logger.
func TestJSONLogsDurationsAndRedisLines(t *testing.T) {
	var out bytes.Buffer
	logger := newLogger(&Config{LogFormat: "json", LogLevel: slog.LevelInfo}, &out)
	logger.Info("waited", "wait", 1500*time.Millisecond, slog.Group("g", slog.Duration("ttl", 15*time.Second)))
	redisLog{logger}.Printf(context.Background(), "redis: %s:%d: connection refused\n", "127.0.0.1", 6379)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 JSON lines, got:\n%s", out.String())
	}
	var first struct {
		Wait string `json:"wait"`
		G    struct {
			TTL string `json:"ttl"`
		} `json:"g"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.Wait != "1.5s" || first.G.TTL != "15s" {
		t.Fatalf("durations: %s (%v)", lines[0], err)
	}
	var second map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil || second["component"] != "go-redis" ||
		second["msg"] != "redis: 127.0.0.1:6379: connection refused" {
		t.Fatalf("go-redis line: %s (%v)", lines[1], err)
	}
}
