package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shardfleet/shardfleet/internal/redistest"
	"github.com/shardfleet/shardfleet/internal/testutil"
	"github.com/shardfleet/shardfleet/internal/worker"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func poll(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, with a deadline
	}
}

// TestSimRunsOffline is `worker -sim`: shards come up against the in-process
// fake, events flow, the summary line says so, and a stop is clean.
func TestSimRunsOffline(t *testing.T) {
	cfg, err := parseConfig([]string{"-sim", "-shard-count", "2", "-identify-window", "50ms",
		"-sim-events-per-second", "200", "-summary-interval", "50ms", "-http-addr", ""}, envOf(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var logs testutil.LogBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)), io.Discard) }()
	poll(t, "a summary with every shard ready and events flowing", 20*time.Second, func() bool {
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "shards_ready=2/2") && !strings.Contains(line, "events_per_second=0.0") {
				return true
			}
		}
		return false
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if strings.Contains(logs.String(), "test-token") {
		t.Fatal("the token was logged")
	}
}

func TestHTTPHandler(t *testing.T) {
	fake := gatewaytest.NewServer(gatewaytest.WithShards(2), gatewaytest.WithIdentifyWindow(50*time.Millisecond))
	defer fake.Close()
	wc := worker.DefaultConfig()
	wc.Token, wc.WorkerID = fake.Token(), "w-http"
	wc.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	wc.ShardCount, wc.MaxConcurrency = 2, 1
	wc.IdentifyWindow, wc.IdentifyMargin = 50*time.Millisecond, 10*time.Millisecond
	wc.APIURL, wc.GatewayURL = fake.APIURL(), fake.GatewayURL()
	w, err := worker.New(wc)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newHandler(w, nil, "{x}:"))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz before start = %d, want 503", code)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	poll(t, "/readyz 200", 20*time.Second, func() bool { code, _ := get("/readyz"); return code == http.StatusOK })
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{"shardfleet_shards_owned 2", "shardfleet_identifies_total 2", `shardfleet_shard_ready{shard_count="2",shard_id="1",status="ready"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(metrics, fake.Token()) {
		t.Error("/metrics shows the token")
	}
	_, body := get("/status")
	var st struct{ Worker worker.Status }
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.Worker.WorkerID != "w-http" || len(st.Worker.Shards) != 2 || !st.Worker.Ready {
		t.Fatalf("/status = %s (%v)", body, err)
	}
}

func TestPrintFleet(t *testing.T) {
	var out bytes.Buffer
	now := time.Now()
	printFleet(&out, []worker.Status{
		{WorkerID: "a", Host: "h1", LeaseExpiresInMS: 1200, Shards: []worker.ShardStatus{
			{ID: 0, Count: 2, Status: "ready", LatencyMS: 41.5}, {ID: 1, Count: 2, Status: "fatal", Error: "4004"}},
			Waiting: []worker.Wait{{Reason: "data-loss grace", Shards: 3, LeftMS: 1500}}},
		{WorkerID: "b", LeaseExpiresInMS: -1, Error: "no status published"},
	}, now)
	for _, want := range []string{"WORKER", "0/2", "ready", "41.5ms", "1.2s", "4004", "expired", "2 workers, 2 shards",
		"a waits: data-loss grace (3 shards), 1.5s left"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// A killed worker's last published shards show as stale, with how long ago
// it was last seen, and do not count as running.
func TestPrintFleetStale(t *testing.T) {
	var out bytes.Buffer
	now := time.Now()
	printFleet(&out, []worker.Status{
		{WorkerID: "live", LeaseExpiresInMS: 900, UpdatedAt: now, Shards: []worker.ShardStatus{{ID: 0, Count: 2, Status: "ready"}}},
		{WorkerID: "dead", LeaseExpiresInMS: -1, Stale: true, UpdatedAt: now.Add(-12 * time.Second),
			Shards:  []worker.ShardStatus{{ID: 1, Count: 2, Status: "ready"}},
			Waiting: []worker.Wait{{Reason: "old news"}}},
	}, now)
	for _, want := range []string{"stale: ready", "expired, last seen 12s ago", "1 workers, 1 shards (and 1 stale workers)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "old news") {
		t.Errorf("a stale worker's waits are shown:\n%s", out.String())
	}
}

// TestStatusCommand runs a fleet worker against a real redis-server and the
// fake, then `worker status` reads the fleet back from Redis.
func TestStatusCommand(t *testing.T) {
	srv := redistest.Start(t)
	fake := gatewaytest.NewServer(gatewaytest.WithShards(2), gatewaytest.WithIdentifyWindow(50*time.Millisecond))
	defer fake.Close()
	cfg, err := parseConfig([]string{"-redis-url", srv.URL(), "-key-prefix", "st", "-worker-id", "w-status",
		"-shard-count", "2", "-max-concurrency", "1", "-identify-window", "50ms", "-lease-ttl", "600ms",
		"-lease-renew-interval", "100ms", "-api-url", fake.APIURL(), "-gateway-url", fake.GatewayURL(),
		"-http-addr", "", "-summary-interval", "0"}, envOf("DISCORD_TOKEN", fake.Token()), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	var out, errOut bytes.Buffer
	poll(t, "worker status to show both shards ready", 20*time.Second, func() bool {
		out.Reset()
		code := runStatus([]string{"-key-prefix", "st"}, envOf("REDIS_URL", srv.URL()), &out, &errOut)
		return code == exitOK && strings.Count(out.String(), "ready") == 2 && strings.Contains(out.String(), "w-status")
	})
	if !strings.Contains(out.String(), "1 workers, 2 shards") {
		t.Fatalf("status output:\n%s", out.String())
	}
	if code := runStatus(nil, envOf(), &out, &errOut); code != exitBadArgs || !strings.Contains(errOut.String(), "REDIS_URL") {
		t.Fatalf("without REDIS_URL: code %d, stderr %q", code, errOut.String())
	}
}
