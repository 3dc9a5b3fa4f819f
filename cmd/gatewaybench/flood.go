package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// runFlood starts the server and runs the flood clients, repetitions
// interleaved, and prints the medians and ranges.
func runFlood(args []string) error {
	fs := flag.NewFlagSet("flood", flag.ContinueOnError)
	events := fs.Int("events", 200000, "MESSAGE_CREATE dispatches per client")
	reps := fs.Int("reps", 3, "repetitions of every variant, interleaved")
	comps := fs.String("compressions", "plain,zlib-stream,zstd-stream", "transport compressions, comma-separated")
	procs := fs.String("procs", "default,1", "client GOMAXPROCS values, comma-separated (default: the runtime's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srv, err := startServer("-events", strconv.Itoa(*events))
	if err != nil {
		return err
	}
	defer srv.stop()
	variants := crossProduct(*comps, *procs)
	results := make(map[variant][]floodResult)
	fmt.Printf("load average before: %s\n", loadAverage())
	for rep := range *reps {
		for _, v := range variants {
			var r floodResult
			err := runChild(&r, procsEnv(v.other), "client", "-url", srv.floodURL+compressQuery(v.comp),
				"-compression", v.comp, "-events", strconv.Itoa(*events))
			if err != nil {
				return fmt.Errorf("%s, GOMAXPROCS %s, repetition %d: %w", v.comp, v.other, rep+1, err)
			}
			if r.OutOfOrder != 0 || r.Pauses != 0 {
				return fmt.Errorf("%s: %d events out of order or without d, %d backlog pauses", v.comp, r.OutOfOrder, r.Pauses)
			}
			results[v] = append(results[v], r)
		}
	}
	fmt.Printf("load average after: %s\n", loadAverage())
	fmt.Printf("%d MESSAGE_CREATE per client process, %d repetitions interleaved; events per CPU-second: median (range)\n", *events, *reps)
	fmt.Println("| compression | GOMAXPROCS | events/CPU-s | µs CPU/event | of it system | events/s wall |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, v := range variants {
		rs := results[v]
		perCPU := make([]float64, len(rs))
		sysShare := make([]float64, len(rs))
		wall := make([]float64, len(rs))
		for i, r := range rs {
			cpu := float64(r.UserNS + r.SysNS)
			perCPU[i] = float64(r.Events) / cpu * 1e9
			sysShare[i] = float64(r.SysNS) / cpu
			wall[i] = float64(r.Events) / float64(r.WallNS) * 1e9
		}
		med, lo, hi := stats(perCPU)
		fmt.Printf("| %s | %s | %.0fk (%.0fk-%.0fk) | %.2f | %.0f %% | %.0fk |\n", v.comp, v.other,
			med/1e3, lo/1e3, hi/1e3, 1e6/med, median(sysShare)*100, median(wall)/1e3)
	}
	return nil
}

func compressQuery(comp string) string {
	if comp == "plain" {
		return ""
	}
	return "?compress=" + comp
}

func procsEnv(p string) []string {
	if p == "default" {
		return nil
	}
	return []string{"GOMAXPROCS=" + p}
}

// stats returns the median, minimum and maximum.
func stats(xs []float64) (med, lo, hi float64) {
	s := slices.Clone(xs)
	slices.Sort(s)
	return median(s), s[0], s[len(s)-1]
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// server is the serve child process.
type server struct {
	cmd               *exec.Cmd
	stdin             interface{ Close() error }
	floodURL, fakeURL string
}

func startServer(args ...string) (*server, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, append([]string{"serve"}, args...)...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(out).ReadString('\n')
	if f := strings.Fields(line); err == nil && len(f) == 2 {
		s.floodURL, s.fakeURL = f[0], f[1]
		return s, nil
	}
	s.stop()
	return nil, fmt.Errorf("server did not start: %q, %v", line, err)
}

// stop closes the server's stdin, which ends it, and waits for it.
func (s *server) stop() {
	_ = s.stdin.Close()
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// runChild runs this program with args and extra environment variables and
// decodes its stdout as JSON into v.
func runChild(v any, env []string, args ...string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return err
	}
	return json.Unmarshal(out, v)
}

// variant is one compression and one other setting (GOMAXPROCS for flood,
// how shards are opened for idle).
type variant struct{ comp, other string }

// crossProduct returns every combination of the comma-separated
// compressions and other settings, in order.
func crossProduct(comps, others string) []variant {
	var vs []variant
	for _, c := range strings.Split(comps, ",") {
		for _, o := range strings.Split(others, ",") {
			vs = append(vs, variant{c, o})
		}
	}
	return vs
}
