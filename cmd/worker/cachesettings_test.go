package main

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/shardfleet/shardfleet/internal/cache"
	"github.com/shardfleet/shardfleet/pkg/gateway"
)

func TestCacheSettings(t *testing.T) {
	tok := []string{"DISCORD_TOKEN", "abc.def"}
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want CacheSettings
	}{
		{"default follows the default intents", nil, tok,
			CacheSettings{Kinds: cache.DefaultKinds(gateway.IntentsNonPrivileged)}},
		{"members with their intent", nil, append(tok, "INTENTS", "3"),
			CacheSettings{Kinds: cache.Guilds | cache.Channels | cache.Roles | cache.Members}},
		{"messages by count alone", nil, append(tok, "INTENTS", "1", "CACHE_MESSAGES", "20", "CACHE_OLD", "true"),
			CacheSettings{Kinds: cache.Guilds | cache.Channels | cache.Roles | cache.Messages, Messages: 20, Old: true}},
		{"explicit", []string{"-cache", "guilds,channels,messages", "-cache-messages", "5"}, tok,
			CacheSettings{Kinds: cache.Guilds | cache.Channels | cache.Messages, Messages: 5}},
		{"none", nil, append(tok, "CACHE", "none"), CacheSettings{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, envOf(tc.env...), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if c.Cache != tc.want {
				t.Fatalf("cache settings %+v, want %+v", c.Cache, tc.want)
			}
		})
	}
}

func TestCacheSettingErrorsNameTheSetting(t *testing.T) {
	tok := []string{"DISCORD_TOKEN", "abc.def"}
	for _, tc := range []struct {
		name    string
		env     []string
		setting string
		valid   string // what the error says would be valid
	}{
		{"unknown kind", []string{"CACHE", "guilds,users"}, "CACHE", "guilds,channels,roles"},
		{"kind without guilds", []string{"CACHE", "channels"}, "CACHE", "add guilds"},
		{"messages without count", []string{"CACHE", "guilds,channels,messages"}, "CACHE (-cache)", "set CACHE_MESSAGES"},
		{"count without messages", []string{"CACHE", "guilds", "CACHE_MESSAGES", "5"}, "CACHE_MESSAGES (-cache-messages)", "add messages"},
		{"count too large", []string{"CACHE_MESSAGES", "100000"}, "CACHE_MESSAGES (-cache-messages)", "0 (no messages) to 1000"},
		{"count not a number", []string{"CACHE_MESSAGES", "many"}, "CACHE_MESSAGES", "not an integer"},
		{"old not a bool", []string{"CACHE_OLD", "yes please"}, "CACHE_OLD", "true or false"},
		{"messages without GUILDS intent", []string{"INTENTS", "512", "CACHE_MESSAGES", "5"}, "CACHE_MESSAGES (-cache-messages)", "add GUILDS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig(nil, envOf(append(tok, tc.env...)...), io.Discard)
			var se *gateway.ConfigError
			if !errors.As(err, &se) || !strings.HasPrefix(se.Setting, tc.setting) || !strings.Contains(se.Reason, tc.valid) {
				t.Fatalf("error %v: want one naming %s and saying %q", err, tc.setting, tc.valid)
			}
		})
	}
}
