package gateway

import (
	"bytes"
	"errors"
	"log/slog"
	"regexp"
	"testing"
)

// TestShardLoggerPrintsWhatWithWould: the shard logger's lines are those of
// Logger.With(shard_id, shard_count), for text and JSON, with and without a
// group opened by the caller.
func TestShardLoggerPrintsWhatWithWould(t *testing.T) {
	clock := regexp.MustCompile(`(time=|"time":)"?[^ ,"]+"?`)
	handlers := map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	}
	for name, newHandler := range handlers {
		for _, group := range []string{"", "app"} {
			var want, got bytes.Buffer
			base := func(b *bytes.Buffer) *slog.Logger {
				l := slog.New(newHandler(b))
				if group != "" {
					l = l.WithGroup(group)
				}
				return l
			}
			args := []any{slog.Int("code", 4000), slog.Any("error", errors.New("zombie"))}
			base(&want).With(slog.Int("shard_id", 3), slog.Int("shard_count", 8)).Warn("closing", args...)
			newShardLogger(base(&got), 3, 8).Warn("closing", args...)
			base(&want).With(slog.Int("shard_id", 3), slog.Int("shard_count", 8)).With("a", 1).WithGroup("g").Info("x", "b", 2)
			newShardLogger(base(&got), 3, 8).With("a", 1).WithGroup("g").Info("x", "b", 2)
			w, g := clock.ReplaceAllString(want.String(), ""), clock.ReplaceAllString(got.String(), "")
			if w != g {
				t.Errorf("%s, group %q:\nWith:   %s\nshard logger: %s", name, group, w, g)
			}
		}
	}
}
