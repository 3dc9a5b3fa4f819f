package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

func envOf(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseConfigErrorsNameTheSetting(t *testing.T) {
	tok := []string{"DISCORD_TOKEN", "abc.def"}
	tests := []struct {
		name    string
		args    []string
		env     []string
		setting string // expected in the error
	}{
		{"no token", nil, nil, "DISCORD_TOKEN"},
		{"bad ttl env", nil, append(tok, "LEASE_TTL", "soon"), "LEASE_TTL"},
		{"bad ttl flag", []string{"-lease-ttl", "x"}, tok, "-lease-ttl"},
		{"negative shards", nil, append(tok, "SHARD_COUNT", "-1"), "SHARD_COUNT"},
		{"partitions over the max", nil, append(tok, "PARTITIONS", "2000"), "PARTITIONS"},
		{"negative partitions", []string{"-partitions", "-1"}, tok, "-partitions"},
		{"shards not int", nil, append(tok, "SHARD_COUNT", "two"), "SHARD_COUNT"},
		{"api url scheme", nil, append(tok, "DISCORD_API_URL", "ftp://x"), "DISCORD_API_URL"},
		{"gateway url scheme", nil, append(tok, "GATEWAY_URL", "http://x"), "GATEWAY_URL"},
		{"unknown intent bits", nil, append(tok, "INTENTS", "4611686018427387904"), "INTENTS"},
		{"compression", nil, append(tok, "COMPRESSION", "gzip"), "COMPRESSION"},
		{"worker id", nil, append(tok, "WORKER_ID", "a b"), "WORKER_ID"},
		{"prefix two tags", nil, append(tok, "KEY_PREFIX", "{a}{b}"), "KEY_PREFIX"},
		{"log format", nil, append(tok, "LOG_FORMAT", "xml"), "LOG_FORMAT"},
		{"log level", nil, append(tok, "LOG_LEVEL", "loud"), "LOG_LEVEL"},
		{"http addr", nil, append(tok, "HTTP_ADDR", "8080"), "HTTP_ADDR"},
		{"deadline over ttl", nil, append(tok, "LEASE_TTL", "1s", "LEASE_RENEW_DEADLINE", "2s"), "LEASE_RENEW_DEADLINE"},
		{"deadline within clock drift of ttl", nil, append(tok, "LEASE_TTL", "3s", "LEASE_RENEW_DEADLINE", "2900ms"), "LEASE_RENEW_DEADLINE"},
		{"renew too slow", nil, append(tok, "LEASE_TTL", "3s", "LEASE_RENEW_INTERVAL", "2s"), "LEASE_RENEW_INTERVAL"},
		{"zero window", nil, append(tok, "IDENTIFY_WINDOW", "0s"), "IDENTIFY_WINDOW"},
		{"negative maxlen", nil, append(tok, "EVENT_STREAM_MAXLEN", "-5"), "EVENT_STREAM_MAXLEN"},
		{"batch size", nil, append(tok, "EVENT_BATCH_SIZE", "0"), "EVENT_BATCH_SIZE"},
		{"redis scheme", nil, append(tok, "REDIS_URL", "http://x"), "REDIS_URL"},
		{"sentinel without master", nil, append(tok, "REDIS_URL", "redis+sentinel://a:1,b:2"), "REDIS_URL"},
		{"shutdown", nil, append(tok, "SHUTDOWN_TIMEOUT", "-1s"), "SHUTDOWN_TIMEOUT"},
		{"budget reserve", nil, append(tok, "IDENTIFY_BUDGET_RESERVE", "-1"), "IDENTIFY_BUDGET_RESERVE"},
		{"backlog not a size", nil, append(tok, "BACKLOG_SHARD_BYTES", "4MB"), "BACKLOG_SHARD_BYTES"},
		{"backlog too small", []string{"-backlog-shard-bytes", "1KiB"}, tok, "BACKLOG_SHARD_BYTES"},
		{"worker backlog below shard's", nil, append(tok, "BACKLOG_WORKER_BYTES", "1MiB"), "BACKLOG_WORKER_BYTES"},
		{"presence not JSON", nil, append(tok, "PRESENCE", "online"), "PRESENCE"},
		{"presence without status", []string{"-presence", `{"afk":false}`}, tok, "-presence"},
		{"presence unknown field", nil, append(tok, "PRESENCE", `{"status":"online","colour":1}`), "PRESENCE"},
		{"send window", nil, append(tok, "GATEWAY_SEND_WINDOW", "0s"), "GATEWAY_SEND_WINDOW"},
		{"extra arg", []string{"run"}, tok, `argument="run": unexpected`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(tt.args, envOf(tt.env...), &bytes.Buffer{})
			if err == nil {
				t.Fatalf("no error, want one naming %s", tt.setting)
			}
			if !strings.Contains(err.Error(), tt.setting) {
				t.Fatalf("error %q does not name %s", err, tt.setting)
			}
			var ce *gateway.ConfigError
			if !errors.As(err, &ce) || ce.Setting == "" || !errors.Is(err, gateway.ErrInvalidConfig) {
				t.Fatalf("error %q (%#v) is not a *gateway.ConfigError naming its setting", err, ce)
			}
		})
	}
}

func TestParseConfigFlagBeatsEnvBeatsDefault(t *testing.T) {
	c, err := parseConfig([]string{"-lease-ttl", "3s", "-sim"},
		envOf("LEASE_TTL", "9s", "LEASE_RENEW_INTERVAL", "500ms", "KEY_PREFIX", "mybot"), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.LeaseTTL != 3*time.Second {
		t.Errorf("LeaseTTL = %v, want the flag's 3s", c.LeaseTTL)
	}
	if c.LeaseRenewInterval != 500*time.Millisecond {
		t.Errorf("LeaseRenewInterval = %v, want the env's 500ms", c.LeaseRenewInterval)
	}
	if c.LeaseRenewDeadline != 2*time.Second {
		t.Errorf("LeaseRenewDeadline = %v, want 2/3 of the TTL", c.LeaseRenewDeadline)
	}
	if c.IdentifyWindow != 5*time.Second || c.HTTPAddr != ":8080" || c.EventBatchSize != 512 {
		t.Errorf("defaults not applied: %+v", c)
	}
	if c.KeyPrefix != "{mybot}:" {
		t.Errorf("KeyPrefix = %q, want it wrapped in a hash tag", c.KeyPrefix)
	}
	if c.WorkerID == "" {
		t.Error("WorkerID not defaulted")
	}
	if !c.Sim {
		t.Error("-sim not set")
	}
}

func TestParseConfigBacklogSizes(t *testing.T) {
	c, err := parseConfig([]string{"-sim", "-backlog-shard-bytes", "65536"}, envOf("BACKLOG_WORKER_BYTES", "1GiB"), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.BacklogShardBytes != 64<<10 || c.BacklogWorkerBytes != 1<<30 {
		t.Errorf("backlog %d/%d, want 65536 and 1 GiB", c.BacklogShardBytes, c.BacklogWorkerBytes)
	}
	if c, err = parseConfig([]string{"-sim"}, envOf(), &bytes.Buffer{}); err != nil || c.BacklogShardBytes != 4<<20 || c.BacklogWorkerBytes != 256<<20 {
		t.Errorf("default backlog %d/%d (%v), want 4 MiB and 256 MiB", c.BacklogShardBytes, c.BacklogWorkerBytes, err)
	}
}

func TestTokenNeverPrinted(t *testing.T) {
	const token = "MTIzNDU2Nzg5.secret-part.xyz"
	c, err := parseConfig(nil, envOf("DISCORD_TOKEN", token, "REDIS_URL", "redis://u:hunter2@h:6379"), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Token.Reveal() != token {
		t.Fatal("token not kept")
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "config", c, "token", c.Token)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "config", *c, "token", c.Token)
	js, _ := json.Marshal(c)
	printed := fmt.Sprintf("%v %+v %#v %s", c, c, c, c.Token) + logs.String() + string(js)
	for _, secret := range []string{token, "secret-part", "hunter2"} {
		if strings.Contains(printed, secret) {
			t.Fatalf("%q printed: %s", secret, printed)
		}
	}
	// A bad token is reported without its value.
	_, err = parseConfig(nil, envOf("DISCORD_TOKEN", "has space"), &bytes.Buffer{})
	if err == nil || strings.Contains(err.Error(), "has space") {
		t.Fatalf("err = %v: want an error that does not quote the token", err)
	}
}

func TestHelpDocumentsFlagsAndEnv(t *testing.T) {
	var out bytes.Buffer
	_, err := parseConfig([]string{"-h"}, envOf(), &out)
	if !errors.Is(err, ErrHelp) {
		t.Fatalf("err = %v, want ErrHelp", err)
	}
	for _, want := range []string{"-lease-ttl", "LEASE_TTL", "DISCORD_TOKEN", "redis+sentinel://", "worker status"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestParseRedisURL(t *testing.T) {
	tests := []struct {
		url     string
		cluster bool
		kind    string
		addrs   int
		tls     bool
	}{
		{"redis://localhost:6379/2", false, "single", 1, false},
		{"rediss://user:pw@redis.example:6380", false, "single", 1, true},
		{"redis://localhost:6379", true, "cluster", 1, false},
		{"redis://a:1,b:2,c:3", false, "cluster", 3, false},
		{"rediss+cluster://u:p@a:1,b:2", false, "cluster", 2, true},
		{"redis+sentinel://s1:26379,s2:26379/?master_name=mymaster&password=pw", false, "sentinel", 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			target, err := parseRedisURL(tt.url, tt.cluster)
			if err != nil {
				t.Fatal(err)
			}
			if target.Kind() != tt.kind {
				t.Fatalf("kind = %s, want %s", target.Kind(), tt.kind)
			}
			var addrs int
			var tls bool
			switch {
			case target.cluster != nil:
				addrs, tls = len(target.cluster.Addrs), target.cluster.TLSConfig != nil
			case target.failover != nil:
				addrs, tls = len(target.failover.SentinelAddrs), target.failover.TLSConfig != nil
				if target.failover.MasterName != "mymaster" || target.failover.Password != "pw" {
					t.Fatalf("sentinel options: %+v", target.failover)
				}
			default:
				addrs, tls = 1, target.simple.TLSConfig != nil
			}
			if addrs != tt.addrs || tls != tt.tls {
				t.Fatalf("addrs=%d tls=%v, want %d %v", addrs, tls, tt.addrs, tt.tls)
			}
		})
	}
	if _, err := parseRedisURL("redis://u:hunter2@h:notaport", false); err != nil && strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error leaks the password: %v", err)
	}
}

func TestNormalizePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"{shardfleet}:": "{shardfleet}:", "bot": "{bot}:", "bot:": "{bot}:", "app:{bot}:": "app:{bot}:",
	} {
		if got, err := normalizePrefix(in); err != nil || got != want {
			t.Errorf("normalizePrefix(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "{}", "{a}{b}", "a}b{"} {
		if _, err := normalizePrefix(in); err == nil {
			t.Errorf("normalizePrefix(%q): no error", in)
		}
	}
}

// LEASE_TTL=1s alone derives a renew deadline below the default renew
// interval: the error is about LEASE_TTL, the setting the user set, and says
// what would be valid.
func TestLeaseTTLErrorNamesLeaseTTL(t *testing.T) {
	_, err := parseConfig(nil, envOf("DISCORD_TOKEN", "x", "LEASE_TTL", "1s"), &bytes.Buffer{})
	var se *gateway.ConfigError
	if !errors.As(err, &se) || se.Setting != "LEASE_TTL (-lease-ttl)" || se.Value != "1s" {
		t.Fatalf("error %v (%#v), want a ConfigError on LEASE_TTL=1s", err, se)
	}
	for _, want := range []string{"2/3 of LEASE_TTL 1s", "LEASE_RENEW_INTERVAL 2s (the default)", "LEASE_TTL to at least 3.602s", "LEASE_RENEW_INTERVAL below 556ms"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	_, err = parseConfig(nil, envOf("DISCORD_TOKEN", "x", "LEASE_RENEW_INTERVAL", "9s"), &bytes.Buffer{})
	if !errors.As(err, &se) || se.Setting != "LEASE_RENEW_INTERVAL (-lease-renew-interval)" {
		t.Fatalf("interval set alone: %v, want it blamed", err)
	}
}
