package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// runInstructions counts the instructions shardfleet's flood client
// executes per event, under valgrind (cachegrind, no cache simulation): the
// same client and server as flood, but a count that does not move with the
// machine's speed on the day, which events per CPU-second do by a quarter
// or more (docs/benchmarks.md). Each compression's client runs -reps times
// for -events/5 and for -events events, each size against a server of its
// own; the figure is the difference of the two sizes' least counts over the
// difference in events, so the process's start and the handshake drop out.
// The least count, because what varies between runs is the runtime
// spinning while it waits (for the socket, for a GC worker), which only
// ever adds. Before the counted runs of a compression, a client runs once
// against each server without valgrind, for the server to encode that
// compression's flood: a counted client that waited for it would count the
// runtime's spinning meanwhile.
func runInstructions(args []string) error {
	fs := flag.NewFlagSet("instructions", flag.ContinueOnError)
	events := fs.Int("events", 100000, "MESSAGE_CREATE dispatches in the larger run (the smaller has a fifth)")
	reps := fs.Int("reps", 3, "repetitions of every pair of runs")
	comps := fs.String("compressions", "plain,zlib-stream,zstd-stream", "transport compressions, comma-separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *events < 5 {
		return fmt.Errorf("-events %d: want at least 5", *events)
	}
	valgrind, err := exec.LookPath("valgrind")
	if err != nil {
		return fmt.Errorf("instructions needs valgrind (Debian: apt-get install valgrind): %w", err)
	}
	sizes := [2]int{*events / 5, *events}
	var srvs [2]*server
	for i, n := range sizes {
		if srvs[i], err = startServer("-events", strconv.Itoa(n)); err != nil {
			return err
		}
		defer srvs[i].stop()
	}
	fmt.Printf("instructions per event (valgrind --tool=cachegrind), from runs of %d and %d events, %d repetitions\n", sizes[0], sizes[1], *reps)
	fmt.Println("| compression | instructions/event | larger run: least-most instructions |")
	fmt.Println("|---|---|---|")
	for _, comp := range strings.Split(*comps, ",") {
		for i, size := range sizes {
			var r floodResult
			if err := runChild(&r, nil, "client", "-url", srvs[i].floodURL+compressQuery(comp),
				"-compression", comp, "-events", strconv.Itoa(size)); err != nil {
				return fmt.Errorf("%s, %d events, warming the server up: %w", comp, size, err)
			}
		}
		var least, most [2]int64
		for rep := range *reps {
			for i, size := range sizes {
				n, err := countInstructions(valgrind, srvs[i].floodURL, comp, size)
				if err != nil {
					return fmt.Errorf("%s, %d events, repetition %d: %w", comp, size, rep+1, err)
				}
				if rep == 0 || n < least[i] {
					least[i] = n
				}
				most[i] = max(most[i], n)
			}
		}
		fmt.Printf("| %s | %.0f | %.1fM-%.1fM |\n", comp, float64(least[1]-least[0])/float64(sizes[1]-sizes[0]),
			float64(least[1])/1e6, float64(most[1])/1e6)
	}
	return nil
}

// countInstructions runs the flood client for events events under
// cachegrind and returns the instructions it counted.
func countInstructions(valgrind, floodURL, comp string, events int) (int64, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(valgrind, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
		exe, "client", "-url", floodURL+compressQuery(comp), "-compression", comp, "-events", strconv.Itoa(events))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("%w: %s", err, lastLines(stderr.String(), 5))
	}
	var r floodResult
	if err := json.Unmarshal(out, &r); err != nil {
		return 0, fmt.Errorf("the client's result: %w", err)
	}
	if r.Events != events || r.OutOfOrder != 0 {
		return 0, fmt.Errorf("%d of %d events, %d out of order", r.Events, events, r.OutOfOrder)
	}
	return parseIRefs(stderr.String())
}

// iRefs is cachegrind's summary line of instructions executed, as
// "==123== I   refs:      756,295,899" (older versions) or
// "==123== I refs: 756,295,899".
var iRefs = regexp.MustCompile(`(?m)^==\d+== I\s+refs:\s+([\d,]+)\s*$`)

// parseIRefs returns the instruction count in valgrind's output.
func parseIRefs(out string) (int64, error) {
	m := iRefs.FindAllStringSubmatch(out, -1)
	if len(m) != 1 {
		return 0, errors.New("valgrind's output has no single 'I refs' line: " + lastLines(out, 5))
	}
	return strconv.ParseInt(strings.ReplaceAll(m[0][1], ",", ""), 10, 64)
}

// lastLines returns the last n lines of s, for an error.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
