package worker

import (
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// BenchmarkIdleShardHeap opens 200 idle shards (zlib-stream, 2 guilds each)
// in one fleet-mode Worker, with the fake in the same process, and writes a
// heap profile of the idle state, every allocation sampled, to
// WORKER_HEAP_PROFILE: what the fleet's per-shard state holds, beside the
// gateway's, once the shards' decoders are released. Not a CI figure (the fake's memory shares the process; the RSS
// figure is cmd/gatewaybench's and BenchmarkScale2000's). Run:
//
//	WORKER_HEAP_PROFILE=/tmp/w.pb go test -run '^$' -bench BenchmarkIdleShardHeap -benchtime 1x ./internal/worker/
//	go tool pprof -sample_index=inuse_space -top /tmp/w.pb
func BenchmarkIdleShardHeap(b *testing.B) {
	out := os.Getenv("WORKER_HEAP_PROFILE")
	if out == "" {
		b.Skip("set WORKER_HEAP_PROFILE to a file for the heap profile")
	}
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = 512 * 1024 }()
	const shards = 200
	for range b.N {
		w := startIdleWorker(b, shards)
		// Not a condition: let the open's transients end, as an idle worker
		// would, and past the 5 s after which a quiet zlib-stream
		// connection gives back its decoder (pkg/gateway's zlibIdleAfter).
		time.Sleep(7 * time.Second)
		runtime.GC()
		runtime.GC()
		f, err := os.Create(out)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		w.stop(b)
	}
}

// startIdleWorker starts a fleet-mode Worker of shards zlib-stream shards
// (2 guilds each, heartbeats 41.25 s apart, as Discord's) against a fake in
// this process, and waits until every shard is READY.
func startIdleWorker(b *testing.B, shards int) *running {
	h := newHarness(b, shards, gatewaytest.WithGuilds(2*shards), gatewaytest.WithMaxConcurrency(50),
		gatewaytest.WithIdentifyWindow(time.Millisecond), gatewaytest.WithHeartbeatInterval(41250*time.Millisecond),
		gatewaytest.WithSessionStartLimit(1000000, time.Hour))
	cfg := h.config("idle", shards)
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.MaxConcurrency, cfg.IdentifyWindow, cfg.IdentifyMargin = 50, time.Millisecond, 0
	cfg.GatewayOptions = append(cfg.GatewayOptions, gateway.WithCompression(gateway.CompressionZlibStream))
	w := h.start(cfg)
	eventually(b, "every shard READY", 90*time.Second, func() bool { return readyShards(w) == shards })
	return w
}
