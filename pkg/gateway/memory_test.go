package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// TestIdleShardMemory measures the memory of idle connected shards against a
// fake Discord in another process. It only runs when asked to:
//
//	go build -o /tmp/fakediscord ./cmd/fakediscord
//	/tmp/fakediscord -addr 127.0.0.1:8090 -shards 1000 -max-concurrency 1000 \
//	  -identify-window 1ms -session-start-total 1000000 &
//	GATEWAY_MEM_URL=ws://127.0.0.1:8090/gateway GATEWAY_MEM_SHARDS=1000 \
//	  GATEWAY_MEM_COMPRESSION=zlib-stream go test -run TestIdleShardMemory -v ./pkg/gateway/
//
// It reports RSS growth / shards (the figure), the growth of
// anonymous memory alone (RSS less the binary's code pages that the first
// connection faults in, a one-off cost), and the runtime's breakdown of it.
// GATEWAY_MEM_PROFILE=file writes a heap profile of the idle state (every
// allocation sampled). (-session-start-total: each run IDENTIFYs 1000 times;
// the fake's default daily budget of 1000 would revoke the token on the
// second run.)
func TestIdleShardMemory(t *testing.T) {
	u, n := memTestEnv(t)
	compression := gateway.Compression(os.Getenv("GATEWAY_MEM_COMPRESSION"))
	token := os.Getenv("GATEWAY_MEM_TOKEN")
	if token == "" {
		token = "test-token"
	}
	logger := testLogger()
	shards := make([]gateway.Gateway, n)
	measureIdle(t, fmt.Sprintf("compression %q", compression), n, func(i int) error {
		shards[i] = gateway.New(token, nil, gateway.WithURL(u), gateway.WithShardID(i), gateway.WithShardCount(n),
			gateway.WithCompression(compression), gateway.WithLogger(logger))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return shards[i].Open(ctx)
	})
	for _, g := range shards {
		if g != nil {
			g.Close(context.Background())
		}
	}
}

// TestIdleBareWebsocketMemory is the floor TestIdleShardMemory is measured
// against: the same fake and the same measurement, but each "shard" is only
// a coder/websocket connection that IDENTIFYs, reads up to READY and then
// sits in Reader on a goroutine of its own, as any client must. Nothing else:
// no heartbeats, no state, no logger. Same environment variables (no
// compression).
func TestIdleBareWebsocketMemory(t *testing.T) {
	u, n := memTestEnv(t)
	q := url.Values{"v": {"10"}, "encoding": {"json"}}
	conns := make([]*websocket.Conn, n)
	var readers sync.WaitGroup
	measureIdle(t, "bare coder/websocket", n, func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, u+"?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		ws.SetReadLimit(64 << 20)
		conns[i] = ws
		identify := fmt.Sprintf(`{"op":2,"d":{"token":"test-token","intents":0,"properties":{"os":"linux","browser":"x","device":"x"},"shard":[%d,%d]}}`, i, n)
		if err := ws.Write(ctx, websocket.MessageText, []byte(identify)); err != nil {
			return err
		}
		ready := make(chan struct{})
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				_, msg, err := ws.Read(context.Background())
				if err != nil {
					return
				}
				if ready != nil && bytes.Contains(msg, []byte(`"t":"READY"`)) {
					close(ready)
					ready = nil
				}
			}
		}()
		select {
		case <-ready:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	for _, ws := range conns {
		if ws != nil {
			_ = ws.CloseNow()
		}
	}
	readers.Wait()
}

// memTestEnv returns the fake's gateway URL and the number of connections,
// or skips the test.
func memTestEnv(t *testing.T) (u string, n int) {
	u = os.Getenv("GATEWAY_MEM_URL")
	if u == "" {
		t.Skip("set GATEWAY_MEM_URL to a fake Discord's gateway URL (see TestIdleShardMemory)")
	}
	n = 1000
	if s := os.Getenv("GATEWAY_MEM_SHARDS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n <= 0 {
			t.Fatalf("GATEWAY_MEM_SHARDS=%q: want a positive number", s)
		}
	}
	return u, n
}

// measureIdle opens n connections with open, 50 at a time, lets them go
// idle, and logs the memory they added per connection. (50 workers rather
// than a goroutine per connection: the runtime keeps every goroutine
// descriptor it ever needed at once, and the harness's should not count.)
func measureIdle(t *testing.T, what string, n int, open func(i int) error) {
	if os.Getenv("GATEWAY_MEM_PROFILE") != "" {
		runtime.MemProfileRate = 1
	}
	before := settle(t)
	var wg sync.WaitGroup
	next := make(chan int)
	errs := make(chan error, n)
	for range min(50, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := open(i); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("open: %v", err)
	}
	after := settle(t)
	if p := os.Getenv("GATEWAY_MEM_PROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		_ = pprof.Lookup("heap").WriteTo(f, 0)
		_ = f.Close()
	}
	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / 1024 / float64(n) }
	for i, s := range after.classes {
		if d := per(s.Value.Uint64(), before.classes[i].Value.Uint64()); d >= 0.05 || d <= -0.05 {
			t.Logf("  %-40s %+6.2f KiB", strings.TrimPrefix(s.Name, "/memory/classes/"), d)
		}
	}
	t.Logf("%d idle connections, %s, goroutines %d: RSS +%d KiB (%.1f KiB each); anonymous +%.1f KiB each; Go heap+stacks +%.1f KiB each",
		n, what, runtime.NumGoroutine(), (after.rss-before.rss)>>10, per(after.rss, before.rss),
		per(after.anon, before.anon), per(after.goMem, before.goMem))
}

type memSnapshot struct {
	rss, anon uint64 // VmRSS and RssAnon
	goMem     uint64 // HeapInuse + StackInuse
	classes   []metrics.Sample
}

// settle collects garbage and returns the memory in use.
func settle(t *testing.T) memSnapshot {
	// Let transient goroutines end (handshakes; dispatchers linger 100 ms), and
	// collect a few times: the runtime halves an oversized stack per GC, as it
	// would in a long-running idle process.
	time.Sleep(1500 * time.Millisecond)
	for range 4 {
		runtime.GC()
	}
	debug.FreeOSMemory()
	var s memSnapshot
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.goMem = ms.HeapInuse + ms.StackInuse
	for _, d := range metrics.All() {
		if strings.HasPrefix(d.Name, "/memory/classes/") && d.Name != "/memory/classes/total:bytes" {
			s.classes = append(s.classes, metrics.Sample{Name: d.Name})
		}
	}
	metrics.Read(s.classes)
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range bytes.Split(status, []byte("\n")) {
		f := bytes.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseUint(string(f[1]), 10, 64)
		switch string(f[0]) {
		case "VmRSS:":
			s.rss = kb << 10
		case "RssAnon:":
			s.anon = kb << 10
		}
	}
	return s
}
