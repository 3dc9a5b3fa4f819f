package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/shardfleet/shardfleet/internal/redistest"
)

// A wrong Redis password (or none where one is required) stops the worker at
// start with exit 1 and a message that says authentication failed, without
// the password.
func TestWrongRedisPasswordIsAClearErrorAtStart(t *testing.T) {
	srv := redistest.Start(t, redistest.Option{"--requirepass", "right-pass-91c2"})
	for name, url := range map[string]string{
		"wrong password": "redis://:wrong-pass-5e7a@" + srv.Addr(),
		"no password":    srv.URL(),
		"unknown user":   "redis://nobody:wrong-pass-5e7a@" + srv.Addr(),
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run([]string{"-redis-url", url, "-http-addr", "", "-summary-interval", "0"},
				envOf("DISCORD_TOKEN", "tok-7d1e"), &stdout, &stderr)
			out := stdout.String() + stderr.String()
			if code != exitFailed {
				t.Fatalf("exit %d, want %d; output:\n%s", code, exitFailed, out)
			}
			if !strings.Contains(out, "authentication failed") {
				t.Fatalf("output does not say authentication failed:\n%s", out)
			}
			for _, secret := range []string{"wrong-pass-5e7a", "right-pass-91c2", "tok-7d1e"} {
				if strings.Contains(out, secret) {
					t.Fatalf("output holds a secret %q:\n%s", secret, out)
				}
			}
		})
	}
}
