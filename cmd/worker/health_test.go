package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestHealthCommand is `worker health` against a real HTTP server: 2xx exits
// 0, anything else 1, and a bad HTTP_ADDR names the setting.
func TestHealthCommand(t *testing.T) {
	var ready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/healthz", r.URL.Path == "/readyz" && ready.Load():
			rw.WriteHeader(http.StatusOK)
		default:
			rw.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	_, port, _ := strings.Cut(addr, ":")
	var out, errOut bytes.Buffer
	run := func(env func(string) (string, bool), args ...string) int {
		out.Reset()
		errOut.Reset()
		return runHealth(args, env, &out, &errOut)
	}
	// ":port", as in the compose file, is checked on the loopback address.
	if code := run(envOf("HTTP_ADDR", ":"+port)); code != exitOK || !strings.Contains(out.String(), "/healthz: 200") {
		t.Fatalf("healthz: code %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	if code := run(envOf("HTTP_ADDR", addr), "-ready"); code != exitFailed || !strings.Contains(errOut.String(), "503") {
		t.Fatalf("readyz while not ready: code %d, stderr %q", code, errOut.String())
	}
	ready.Store(true)
	if code := run(envOf(), "-http-addr", addr, "-ready"); code != exitOK {
		t.Fatalf("readyz when ready: code %d, stderr %q", code, errOut.String())
	}
	if code := run(envOf(), "-url", srv.URL+"/elsewhere"); code != exitFailed {
		t.Fatalf("-url to a 503: code %d", code)
	}
	srv.Close()
	if code := run(envOf("HTTP_ADDR", addr)); code != exitFailed {
		t.Fatalf("nothing listening: code %d", code)
	}
	for _, bad := range []string{"", "8080"} {
		if code := run(envOf("HTTP_ADDR", bad)); code != exitBadArgs || !strings.Contains(errOut.String(), "HTTP_ADDR (-http-addr)") {
			t.Errorf("HTTP_ADDR=%q: code %d, stderr %q", bad, code, errOut.String())
		}
	}
}
