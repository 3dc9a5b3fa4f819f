package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
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
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-token", token, "-guilds", "5", "-identify-window", "50ms",
		"-members-per-guild", "3", "-roles-per-guild", "2")
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
	var state gatewaytest.State
	resp, err = client.Get(base + "/_fake/state")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&state)
	resp.Body.Close()
	if g := state.Guilds[guilds[0]]; len(state.Guilds) != 5 || g == nil || len(g.Members) != 3 || len(g.Roles) != 3 {
		t.Fatalf("/_fake/state: %d guilds, the first %+v; want 5, with 3 members and 3 roles", len(state.Guilds), g)
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
	for _, tc := range [][2]string{{"-shards", "Shards"}, {"-voice-per-guild", "World.VoiceStates"}, {"-roles-per-guild", "World.Roles"}} {
		value := "0"
		if tc[0] != "-shards" {
			value = "-1"
		}
		err := run(context.Background(), []string{"-addr", "127.0.0.1:0", tc[0], value}, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tc[1]) {
			t.Errorf("%s %s: error %v does not name the field %s", tc[0], value, err, tc[1])
		}
	}
}

// TestWorldFlags: the world flags set every World field.
func TestWorldFlags(t *testing.T) {
	opts, _, err := parseFlags([]string{"-world-seed", "9", "-channels-per-guild", "4", "-threads-per-guild", "1",
		"-roles-per-guild", "2", "-emojis-per-guild", "3", "-stickers-per-guild", "4", "-members-per-guild", "50",
		"-voice-per-guild", "5", "-presences-per-guild", "6", "-messages-per-channel", "7", "-mutations-per-second", "2.5"},
		io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg := gatewaytest.DefaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	want := gatewaytest.World{Seed: 9, Channels: 4, Threads: 1, Roles: 2, Emojis: 3, Stickers: 4, Members: 50,
		VoiceStates: 5, Presences: 6, Messages: 7}
	if cfg.World != want || cfg.MutationsPerSecond != 2.5 {
		t.Fatalf("world %+v, %v mutations/s; want %+v, 2.5", cfg.World, cfg.MutationsPerSecond, want)
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
