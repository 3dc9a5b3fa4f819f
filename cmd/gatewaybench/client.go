package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"syscall"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/sharding"
)

// floodResult is what a flood client reports on stdout.
type floodResult struct {
	Events     int    `json:"events"`
	UserNS     int64  `json:"user_ns"`
	SysNS      int64  `json:"sys_ns"`
	WallNS     int64  `json:"wall_ns"`
	OutOfOrder int    `json:"out_of_order"`
	Pauses     uint64 `json:"pauses"`
	// A peer's client (peers.go) reports, besides, the inflater it really
	// used, the connections it lost mid-run and its library's versions.
	Inflate    string `json:"inflate"`
	Reconnects int    `json:"reconnects"`
	Peer       string `json:"peer"`
}

// floodClient opens one shard through pkg/sharding and reads the flood.
func floodClient(args []string) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	u := fs.String("url", "", "the flood's gateway URL")
	comp := fs.String("compression", "plain", "plain, zlib-stream or zstd-stream")
	events := fs.Int("events", 200000, "MESSAGE_CREATE dispatches to wait for")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	traceFile := fs.String("trace", "", "write an execution trace of the run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	stop, err := startProfiles(*cpuProfile, *traceFile)
	if err != nil {
		return err
	}
	defer stop()
	var res floodResult
	done := make(chan struct{})
	// The handler gets t, s and the raw d, checks the order and looks at d
	// as any handler would before parsing it.
	handler := func(_ gateway.Gateway, t gateway.EventType, s int, d json.RawMessage) {
		if t != messageCreate {
			return
		}
		res.Events++
		if s != res.Events+1 || len(d) == 0 || d[0] != '{' {
			res.OutOfOrder++
		}
		if res.Events == *events {
			close(done)
		}
	}
	// The server writes the whole flood at once, faster than any real
	// gateway: a bound the dispatcher could fall behind would pause the shard
	// and RESUME, which the stand-in does not serve. The budget counts
	// pauses, so a run that paused anyway says so.
	budget := gateway.NewBacklogBudget(0)
	user0, sys0 := cpuTime()
	start := time.Now()
	m := sharding.New("bench-token", handler, sharding.WithShardCount(1), sharding.WithShardIDs(0),
		sharding.WithLogger(quietLogger()),
		sharding.WithGatewayConfigOpts(gateway.WithURL(*u), gateway.WithCompression(compression(*comp)),
			gateway.WithBacklogBytes(1<<40), gateway.WithBacklogBudget(budget)))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	m.Open(ctx)
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("%d of %d events after 5 minutes", res.Events, *events)
	}
	user1, sys1 := cpuTime()
	res.UserNS, res.SysNS, res.WallNS = user1-user0, sys1-sys0, time.Since(start).Nanoseconds()
	res.Pauses = budget.Stats().Pauses
	return json.NewEncoder(os.Stdout).Encode(res)
}

// cpuTime is the process's user and system CPU time so far, from the kernel.
func cpuTime() (user, sys int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err) // RUSAGE_SELF with a valid pointer cannot fail
	}
	return ru.Utime.Nano(), ru.Stime.Nano()
}

func compression(name string) gateway.Compression {
	if name == "plain" {
		return gateway.CompressionNone
	}
	return gateway.Compression(name)
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

const messageCreate gateway.EventType = "MESSAGE_CREATE"

// startProfiles starts a CPU profile and an execution trace into the files
// named (none when empty); stop ends and closes them.
func startProfiles(cpuFile, traceFile string) (stop func(), err error) {
	var files []*os.File
	stop = func() {
		pprof.StopCPUProfile()
		trace.Stop()
		for _, f := range files {
			_ = f.Close()
		}
	}
	for _, p := range []struct {
		name  string
		start func(io.Writer) error
	}{{cpuFile, pprof.StartCPUProfile}, {traceFile, trace.Start}} {
		if p.name == "" {
			continue
		}
		f, err := os.Create(p.name)
		if err != nil {
			stop()
			return nil, err
		}
		files = append(files, f)
		if err := p.start(f); err != nil {
			stop()
			return nil, err
		}
	}
	return stop, nil
}
