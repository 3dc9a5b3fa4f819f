package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// BenchmarkIdleConnectionMemory measures the fake's memory per idle,
// identified connection: it runs fakediscord as a process, opens 1000
// sessions from this one, and reports the fake's RSS growth per connection.
//
//	go test -run XXX -bench IdleConnectionMemory -benchtime 1x ./cmd/fakediscord/
func BenchmarkIdleConnectionMemory(b *testing.B) {
	for _, compress := range []string{"", "zlib-stream", "zstd-stream"} {
		name := compress
		if name == "" {
			name = "plain"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				perConn := idleMemory(b, 1000, compress)
				b.ReportMetric(perConn/1024, "KiB/conn")
			}
		})
	}
}

func idleMemory(b *testing.B, n int, compress string) float64 {
	bin := filepath.Join(b.TempDir(), "fakediscord")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-identify-window", "0s", "-heartbeat-interval", "1h",
		"-session-start-total", "100000")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		b.Fatal("no output")
	}
	base := strings.TrimPrefix(sc.Text(), "fakediscord listening on ")
	gw := "ws" + strings.TrimPrefix(base, "http") + "/gateway?v=10&encoding=json"
	if compress != "" {
		gw += "&compress=" + compress
	}
	// Warm up: one session, so the runtime's fixed costs are paid before the baseline.
	conns := openSessions(b, gw, 1)
	before := rss(b, cmd.Process.Pid)
	conns = append(conns, openSessions(b, gw, n)...)
	after := rss(b, cmd.Process.Pid)
	for _, c := range conns {
		_ = c.CloseNow()
	}
	return float64(after-before) / float64(n)
}

func openSessions(b *testing.B, url string, n int) []*websocket.Conn {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	id, _ := json.Marshal(map[string]any{"op": 2, "d": map[string]any{"token": "test-token", "intents": 513,
		"properties": map[string]string{}, "shard": []int{0, 1}}})
	out := make([]*websocket.Conn, 0, n)
	for range n {
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			b.Fatalf("dial: %v", err)
		}
		c.SetReadLimit(-1)
		out = append(out, c)
		if _, _, err := c.Read(ctx); err != nil { // HELLO
			b.Fatal(err)
		}
		if err := c.Write(ctx, websocket.MessageText, id); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.Read(ctx); err != nil { // READY
			b.Fatal(err)
		}
	}
	return out
}

// rss reads a process's resident set size in bytes.
func rss(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb * 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
