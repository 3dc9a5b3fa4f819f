package main

import (
	"bytes"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/shardfleet/shardfleet/internal/redistest"
)

// A Redis in protected mode answers a non-loopback client "-DENIED ..." and
// hangs up, which go-redis reports as "write: broken pipe": the worker's
// error carries the server's reply and names REDIS_URL.
func TestRedisRefusalShowsTheServersReply(t *testing.T) {
	ip := nonLoopbackIPv4(t)
	srv := redistest.Start(t, redistest.Option{"--bind", "127.0.0.1", ip}) // protected mode is on by default
	url := "redis://" + net.JoinHostPort(ip, strconv.Itoa(srv.Port()))
	var stderr bytes.Buffer
	code := run(nil, envOf("DISCORD_TOKEN", "x", "REDIS_URL", url, "HTTP_ADDR", ""), &bytes.Buffer{}, &stderr)
	if code != exitFailed {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitFailed, stderr.String())
	}
	for _, want := range []string{"DENIED Redis is running in protected mode", "REDIS_URL"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}

// nonLoopbackIPv4 is an address of this host that is not loopback, or skips.
func nonLoopbackIPv4(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skip(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Skip("no non-loopback IPv4 address: protected mode cannot be seen")
	return ""
}
