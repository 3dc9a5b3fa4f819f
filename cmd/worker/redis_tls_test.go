package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/redistest"
	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// The REDIS_TLS_* settings reach the TLS configuration of every client kind.
func TestRedisTLSAppliesToEveryKind(t *testing.T) {
	files := redistest.WriteTLSFiles(t)
	tl := redisTLS{CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey, ServerName: "redis.internal"}
	for _, raw := range []string{"rediss://u:p@h:6380", "rediss+sentinel://s1:1,s2:2/?master_name=m", "rediss+cluster://a:1,b:2"} {
		target, err := newRedisTarget(RedisURL(raw), false, tl)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		c := *target.tlsConfig()
		if c == nil || c.RootCAs == nil || len(c.Certificates) != 1 || c.ServerName != "redis.internal" {
			t.Errorf("%s (%s): TLS config %+v lacks the CA, the client certificate or the server name", raw, target.Kind(), c)
		}
	}
}

func TestRedisSettingErrorsNameTheSetting(t *testing.T) {
	files := redistest.WriteTLSFiles(t)
	tok := []string{"DISCORD_TOKEN", "abc.def"}
	tlsURL := append(tok, "REDIS_URL", "rediss://h:6380")
	tests := []struct {
		name    string
		env     []string
		setting string
	}{
		{"user without password", append(tok, "REDIS_URL", "redis://fleet@h:6379"), "REDIS_URL"},
		{"user with empty password", append(tok, "REDIS_URL", "redis://fleet:@h:6379"), "REDIS_URL"},
		{"CA without rediss", append(tok, "REDIS_URL", "redis://h:6379", "REDIS_TLS_CA_FILE", files.CA), "REDIS_TLS_CA_FILE"},
		{"server name without rediss", append(tok, "REDIS_URL", "redis+cluster://a:1,b:2", "REDIS_TLS_SERVER_NAME", "x"), "REDIS_TLS_SERVER_NAME"},
		{"TLS without REDIS_URL", append(tok, "REDIS_TLS_CERT_FILE", files.ClientCert), "REDIS_TLS_CERT_FILE"},
		{"CA missing", append(tlsURL, "REDIS_TLS_CA_FILE", files.CA+".missing"), "REDIS_TLS_CA_FILE"},
		{"CA not PEM", append(tlsURL, "REDIS_TLS_CA_FILE", files.ClientKey+"x"), "REDIS_TLS_CA_FILE"},
		{"CA a key", append(tlsURL, "REDIS_TLS_CA_FILE", files.ClientKey), "REDIS_TLS_CA_FILE"},
		{"cert without key", append(tlsURL, "REDIS_TLS_CERT_FILE", files.ClientCert), "REDIS_TLS_KEY_FILE"},
		{"key without cert", append(tlsURL, "REDIS_TLS_KEY_FILE", files.ClientKey), "REDIS_TLS_CERT_FILE"},
		{"key of another cert", append(tlsURL, "REDIS_TLS_CERT_FILE", files.ClientCert, "REDIS_TLS_KEY_FILE", files.ServerKey), "REDIS_TLS_CERT_FILE"},
		{"http max conns", append(tok, "HTTP_MAX_CONNS", "0"), "HTTP_MAX_CONNS"},
		{"http idle timeout", append(tok, "HTTP_IDLE_TIMEOUT", "0s"), "HTTP_IDLE_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(nil, envOf(tt.env...), &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tt.setting) {
				t.Fatalf("error %v, want one naming %s", err, tt.setting)
			}
			if !errors.Is(err, gateway.ErrInvalidConfig) {
				t.Fatalf("error %v does not match gateway.ErrInvalidConfig", err)
			}
		})
	}
	var out, errOut bytes.Buffer
	code := runStatus(nil, envOf("REDIS_URL", "rediss://h:6380", "REDIS_TLS_CERT_FILE", files.ClientCert), &out, &errOut)
	if code != exitBadArgs || !strings.Contains(errOut.String(), "REDIS_TLS_KEY_FILE") {
		t.Fatalf("worker status with a certificate and no key: exit %d, %q", code, errOut.String())
	}
}

// Against a real redis-server that requires a client certificate: with the
// REDIS_TLS_* files the client connects; without the certificate the error
// says the TLS handshake failed and names the settings.
func TestRedisTLSConnects(t *testing.T) {
	files := redistest.WriteTLSFiles(t)
	srv := redistest.StartTLS(t, files)
	ping := func(tl redisTLS) error {
		target, err := newRedisTarget(RedisURL(srv.TLSURL()), false, tl)
		if err != nil {
			t.Fatal(err)
		}
		client := target.newClient(nil)
		defer client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return explainRedisErr(client.Ping(ctx).Err())
	}
	if err := ping(redisTLS{CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey}); err != nil {
		t.Fatalf("with CA and client certificate: %v", err)
	}
	err := ping(redisTLS{CAFile: files.CA})
	if err == nil || !strings.Contains(err.Error(), "TLS handshake failed") || !strings.Contains(err.Error(), "REDIS_TLS_CERT_FILE") {
		t.Fatalf("without a client certificate: %v", err)
	}
	err = ping(redisTLS{CertFile: files.ClientCert, KeyFile: files.ClientKey}) // the system CAs do not know ours
	if err == nil || !strings.Contains(err.Error(), "REDIS_TLS_CA_FILE") {
		t.Fatalf("without the CA: %v", err)
	}
}
