package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shardfleet/shardfleet/internal/testutil"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestProcess builds the command, runs it on a free port, reads its URL,
// queries the control API and stops it with SIGTERM.
func TestProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "fakediscord")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const token = "secret-token-do-not-print"
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-token", token, "-guilds", "5", "-identify-window", "50ms")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	lines := bufio.NewScanner(stdout)
	var all []string
	if !lines.Scan() {
		t.Fatalf("no output: %v %s", lines.Err(), stderr.String())
	}
	first := lines.Text()
	all = append(all, first)
	base, ok := strings.CutPrefix(first, "fakediscord listening on ")
	if !ok || !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("first line %q", first)
	}

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := client.Get(base + "/_fake/stats")
	if err != nil {
		t.Fatal(err)
	}
	var stats map[string]any
	err = json.NewDecoder(resp.Body).Decode(&stats)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stats: %d %v", resp.StatusCode, err)
	}
	if _, ok := stats["identifies"].(float64); !ok {
		t.Fatalf("stats %v", stats)
	}
	var guilds []string
	resp, err = client.Get(base + "/_fake/guilds")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&guilds)
	resp.Body.Close()
	if len(guilds) != 5 {
		t.Fatalf("guilds %v, want 5", guilds)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() {
		all = append(all, lines.Text())
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	out := strings.Join(all, "\n") + stderr.String()
	for _, want := range []string{"/api/v10", "/gateway", "/_fake/"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, token) {
		t.Error("the token was printed")
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	var out, errOut strings.Builder
	for _, args := range [][]string{
		{"-shards", "0"},
		{"-heartbeat-interval", "0s"},
		{"-nope"},
		{"extra"},
	} {
		err := run(context.Background(), append([]string{"-addr", "127.0.0.1:0"}, args...), &out, &errOut)
		if err == nil {
			t.Errorf("run %v: no error", args)
		}
	}
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-shards", "0"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "Shards") {
		t.Errorf("error %v does not name the field", err)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut testutil.LogBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, &out, &errOut) }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "listening on") {
		if time.Now().After(deadline) {
			t.Fatal("never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestHelpNeverShowsTheToken(t *testing.T) {
	t.Setenv("FAKEDISCORD_TOKEN", "env-secret-token")
	var out, errOut strings.Builder
	if err := run(context.Background(), []string{"-h"}, &out, &errOut); err == nil {
		t.Fatal("-h: no error")
	}
	if strings.Contains(out.String()+errOut.String(), "env-secret-token") {
		t.Fatal("usage shows the token")
	}
	opts, _, err := parseFlags(nil, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	cfg := gatewaytest.DefaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.Token != "env-secret-token" {
		t.Fatal("FAKEDISCORD_TOKEN not used")
	}
}
