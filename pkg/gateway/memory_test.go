package gateway_test

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"sync"
	"testing"
	"time"

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
// It reports RSS growth / shards, and the Go heap+stack growth / shards.
// (-session-start-total: each run IDENTIFYs 1000 times; the fake's default
// daily budget of 1000 would revoke the token on the second run.)
func TestIdleShardMemory(t *testing.T) {
	u := os.Getenv("GATEWAY_MEM_URL")
	if u == "" {
		t.Skip("set GATEWAY_MEM_URL to a fake Discord's gateway URL (see the comment)")
	}
	n := 1000
	if s := os.Getenv("GATEWAY_MEM_SHARDS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	compression := gateway.Compression(os.Getenv("GATEWAY_MEM_COMPRESSION"))
	token := os.Getenv("GATEWAY_MEM_TOKEN")
	if token == "" {
		token = "test-token"
	}
	if os.Getenv("GATEWAY_MEM_PROFILE") != "" {
		runtime.MemProfileRate = 1
	}
	rss0, mem0 := settle(t)
	shards := make([]gateway.Gateway, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	errs := make(chan error, n)
	for i := range shards {
		shards[i] = gateway.New(token, nil, gateway.WithURL(u), gateway.WithShardID(i), gateway.WithShardCount(n),
			gateway.WithCompression(compression), gateway.WithLogger(testLogger()))
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := shards[i].Open(ctx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("open: %v", err)
	}
	rss1, mem1 := settle(t)
	if p := os.Getenv("GATEWAY_MEM_PROFILE"); p != "" {
		f, _ := os.Create(p)
		_ = pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("stack in use %d KiB, heap in use %d KiB, goroutines %d", ms.StackInuse>>10, ms.HeapInuse>>10, runtime.NumGoroutine())
	t.Logf("%d idle shards, compression %q: RSS +%d KiB (%.1f KiB/shard); Go heap+stacks +%.1f KiB/shard",
		n, compression, (rss1-rss0)>>10, float64(rss1-rss0)/1024/float64(n), float64(mem1-mem0)/1024/float64(n))
	for _, g := range shards {
		g.Close(context.Background())
	}
}

// settle collects garbage and returns the RSS and the Go heap+stack in use.
func settle(t *testing.T) (rss, goMem int64) {
	// Let transient goroutines end (handshakes; dispatchers linger 1 s), and
	// collect a few times: the runtime halves an oversized stack per GC, as it
	// would in a long-running idle process.
	time.Sleep(1500 * time.Millisecond)
	for range 4 {
		runtime.GC()
	}
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range bytes.Split(status, []byte("\n")) {
		if f := bytes.Fields(line); len(f) >= 2 && string(f[0]) == "VmRSS:" {
			kb, _ := strconv.ParseInt(string(f[1]), 10, 64)
			rss = kb << 10
		}
	}
	return rss, int64(ms.HeapInuse + ms.StackInuse)
}
