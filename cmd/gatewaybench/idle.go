package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/sharding"
)

// idleResult is what an idle client reports on stdout.
type idleResult struct {
	RSS  int64 `json:"rss"`  // VmRSS, bytes
	Anon int64 `json:"anon"` // RssAnon, bytes
}

// runIdle starts the fake and, per repetition, compression and way of
// opening, one client with 1 idle shard and one with N; it prints the RSS
// growth per shard.
func runIdle(args []string) error {
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	shards := fs.Int("shards", 1000, "idle shards of the large client")
	reps := fs.Int("reps", 3, "repetitions, interleaved")
	comps := fs.String("compressions", "plain,zlib-stream", "transport compressions, comma-separated")
	vias := fs.String("via", "sharding,gateway", "how shards are opened: sharding (pkg/sharding) and/or gateway (gateway.New per shard)")
	settle := fs.Duration("settle", defaultSettle, "how long each client waits, its shards READY, before it measures")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srv, err := startServer("-events", "1", "-shards", strconv.Itoa(*shards))
	if err != nil {
		return err
	}
	defer srv.stop()
	variants := crossProduct(*comps, *vias)
	rss := map[variant][]float64{}
	anon := map[variant][]float64{}
	fmt.Printf("load average before: %s\n", loadAverage())
	for rep := range *reps {
		for _, v := range variants {
			var one, many idleResult
			for _, n := range []int{1, *shards} {
				r := &one
				if n > 1 {
					r = &many
				}
				err := runChild(r, nil, "idleclient", "-url", srv.fakeURL, "-shards", strconv.Itoa(n),
					"-count", strconv.Itoa(*shards), "-via", v.other, "-compression", v.comp, "-settle", settle.String())
				if err != nil {
					return fmt.Errorf("%s via %s, %d shards, repetition %d: %w", v.comp, v.other, n, rep+1, err)
				}
			}
			per := func(a, b int64) float64 { return float64(a-b) / 1024 / float64(*shards-1) }
			rss[v] = append(rss[v], per(many.RSS, one.RSS))
			anon[v] = append(anon[v], per(many.Anon, one.Anon))
		}
	}
	fmt.Printf("load average after: %s\n", loadAverage())
	fmt.Printf("KiB per idle READY shard = (RSS with %d shards − RSS with 1) / %d, one process each; median (range) of %d\n", *shards, *shards-1, *reps)
	fmt.Println("| compression | opened through | RSS KiB/shard | anonymous KiB/shard |")
	fmt.Println("|---|---|---|---|")
	for _, v := range variants {
		m, lo, hi := stats(rss[v])
		am, alo, ahi := stats(anon[v])
		fmt.Printf("| %s | %s | %.1f (%.1f-%.1f) | %.1f (%.1f-%.1f) |\n", v.comp, v.other, m, lo, hi, am, alo, ahi)
	}
	return nil
}

// idleClient opens shards 0..shards-1 of count, waits until they are READY
// and idle, and reports its memory.
func idleClient(args []string) error {
	fs := flag.NewFlagSet("idleclient", flag.ContinueOnError)
	u := fs.String("url", "", "the fake's gateway URL")
	n := fs.Int("shards", 1, "shards to open")
	count := fs.Int("count", 1, "the shard count")
	via := fs.String("via", "sharding", "sharding or gateway")
	comp := fs.String("compression", "plain", "plain, zlib-stream or zstd-stream")
	heapFile := fs.String("heapprofile", "", "write a heap profile of the idle state, every allocation sampled, to this file")
	settle := fs.Duration("settle", defaultSettle, "how long to wait, the shards READY, before measuring")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *heapFile != "" {
		runtime.MemProfileRate = 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	logger := quietLogger()
	gwOpts := []gateway.ConfigOpt{gateway.WithURL(*u), gateway.WithCompression(compression(*comp)), gateway.WithLogger(logger)}
	var err error
	switch *via {
	case "sharding":
		err = openSharding(ctx, *n, *count, gwOpts)
	case "gateway":
		err = openGateways(ctx, *n, *count, gwOpts)
	default:
		err = fmt.Errorf("-via %q: want sharding or gateway", *via)
	}
	if err != nil {
		return err
	}
	r, err := settledMemory(*settle)
	if err != nil {
		return err
	}
	if *heapFile != "" {
		if err := writeHeapProfile(*heapFile); err != nil {
			return err
		}
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

const fakeToken = "test-token" // gatewaytest's default

func openSharding(ctx context.Context, n, count int, gwOpts []gateway.ConfigOpt) error {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	m := sharding.New(fakeToken, nil, sharding.WithShardCount(count), sharding.WithShardIDs(ids...),
		sharding.WithLogger(quietLogger()), sharding.WithGatewayConfigOpts(gwOpts...),
		sharding.WithRateLimiterConfigOpt(sharding.WithMaxConcurrency(openConcurrency),
			sharding.WithIdentifyWait(time.Millisecond), sharding.WithIdentifyMargin(0)))
	m.Open(ctx)
	for id, g := range m.Shards() {
		if g.Status() != gateway.StatusReady {
			return fmt.Errorf("shard %d: %s after Open", id, g.Status())
		}
	}
	if got := len(m.Shards()); got != n {
		return fmt.Errorf("%d of %d shards open", got, n)
	}
	return nil
}

// openConcurrency is how many shards open at once, both ways, as in
// pkg/gateway's TestIdleShardMemory: the peak of concurrent handshakes
// leaves heap fragmentation behind, so the two ways are compared at one
// concurrency (pkg/sharding: max_concurrency 50 with a 1 ms window).
const openConcurrency = 50

// openGateways opens n gateways with gateway.New, openConcurrency at a time.
func openGateways(ctx context.Context, n, count int, gwOpts []gateway.ConfigOpt) error {
	next := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range min(openConcurrency, n) {
		wg.Go(func() {
			for i := range next {
				g := gateway.New(fakeToken, nil, append(gwOpts, gateway.WithShardID(i), gateway.WithShardCount(count))...)
				if err := g.Open(ctx); err != nil {
					errs <- fmt.Errorf("shard %d: %w", i, err)
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	return <-errs
}

// defaultSettle is longer than an idle zlib-stream shard takes to release
// its inflater: pkg/gateway's quiet period (5 s) after its last message, and
// at most a quarter period more. A shard whose heartbeat was ACKed in the
// last ~6 s holds its inflater again, as it would in any idle process.
const defaultSettle = 12 * time.Second

// settledMemory lets the open's transients pass (the dispatcher's 100 ms
// linger, the idle release of the inflaters), collects garbage as a
// long-running idle process would, and reads VmRSS and RssAnon.
func settledMemory(settle time.Duration) (idleResult, error) {
	time.Sleep(settle) // not waiting for a condition: an idle process's state after a while
	for range 4 {
		runtime.GC()
	}
	debug.FreeOSMemory()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return idleResult{}, err
	}
	var r idleResult
	for _, line := range bytes.Split(status, []byte("\n")) {
		f := bytes.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(string(f[1]), 10, 64)
		switch string(f[0]) {
		case "VmRSS:":
			r.RSS = kb << 10
		case "RssAnon:":
			r.Anon = kb << 10
		}
	}
	return r, nil
}

func writeHeapProfile(name string) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
