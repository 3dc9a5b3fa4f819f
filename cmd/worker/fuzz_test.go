package main

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// FuzzParseRedisURL: any REDIS_URL gives a target or an error, never a panic,
// and an error never repeats the URL's password.
func FuzzParseRedisURL(f *testing.F) {
	for _, seed := range []string{"redis://localhost:6379/0", "rediss://u:pw@h:1", "redis+sentinel://a:1,b:2/?master_name=m",
		"redis+cluster://a:1,b:2", "redis://a:1,b:2?dial_timeout=3", "redis://:@", "redis+x://h", "://", "redis://h:1/x/y"} {
		f.Add(seed, false)
	}
	f.Fuzz(func(t *testing.T, raw string, cluster bool) {
		_, err := parseRedisURL(raw, cluster)
		if err == nil {
			return
		}
		const pw = "Sekr1tPassw0rd"
		if _, err := parseRedisURL(strings.Replace(raw, "://", "://user:"+pw+"@", 1), cluster); err != nil && strings.Contains(err.Error(), pw) {
			t.Fatalf("error leaks the password: %v", err)
		}
	})
}

// FuzzParseConfig: any value of any setting gives a Config or an error naming
// a setting (a *gateway.ConfigError), never a panic.
func FuzzParseConfig(f *testing.F) {
	f.Add("LEASE_TTL", "1s")
	f.Add("INTENTS", "-1")
	f.Add("KEY_PREFIX", "{")
	f.Add("REDIS_URL", "redis+sentinel://")
	f.Fuzz(func(t *testing.T, key, value string) {
		_, err := parseConfig(nil, envOf("DISCORD_TOKEN", "t", key, value), io.Discard)
		if err != nil && !strings.HasPrefix(err.Error(), "config: ") {
			t.Fatalf("error without the setting's name: %v", err)
		}
		if err != nil && !errors.Is(err, gateway.ErrInvalidConfig) {
			t.Fatalf("error is not a *gateway.ConfigError: %v", err)
		}
	})
}
