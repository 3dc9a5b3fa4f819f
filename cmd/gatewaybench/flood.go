package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// runFlood starts the server and runs the flood clients, shardfleet's and
// the peers', repetitions interleaved, and prints the medians and ranges and
// how shardfleet compares with each peer.
func runFlood(args []string) error {
	fs := flag.NewFlagSet("flood", flag.ContinueOnError)
	events := fs.Int("events", 200000, "MESSAGE_CREATE dispatches per client")
	reps := fs.Int("reps", 3, "repetitions of every variant, interleaved")
	comps := fs.String("compressions", "plain,zlib-stream,zstd-stream", "transport compressions, comma-separated")
	procs := fs.String("procs", "default,1", "client GOMAXPROCS values, comma-separated (default: the runtime's)")
	peerNames := fs.String("peers", "", "other libraries' clients to run in the same run, comma-separated: discordjs")
	peerDir := fs.String("peerdir", "bench/peers", "the directory holding the peers' clients, one directory each")
	if err := fs.Parse(args); err != nil {
		return err
	}
	variants := floodVariants(*comps, *procs)
	pvs, err := peerVariants(*peerNames, *peerDir, strings.Split(*comps, ","))
	if err != nil {
		return err
	}
	variants = interleave(variants, pvs)
	srv, err := startServer("-events", strconv.Itoa(*events))
	if err != nil {
		return err
	}
	defer srv.stop()
	results := make(map[floodVariant][]floodResult)
	fmt.Printf("load average before: %s\n", loadAverage())
	for rep := range *reps {
		for _, v := range variants {
			var r floodResult
			if err := v.run(&r, srv.floodURL, *peerDir, *events); err != nil {
				return fmt.Errorf("%s, repetition %d: %w", v, rep+1, err)
			}
			if r.OutOfOrder != 0 || r.Pauses != 0 {
				return fmt.Errorf("%s: %d events out of order or without d, %d backlog pauses", v, r.OutOfOrder, r.Pauses)
			}
			results[v] = append(results[v], r)
		}
	}
	fmt.Printf("load average after: %s\n", loadAverage())
	fmt.Printf("%d MESSAGE_CREATE per client process, %d repetitions interleaved; events per CPU-second: median (range)\n", *events, *reps)
	fmt.Println("| compression | client | events/CPU-s | µs CPU/event | of it system | events/s wall |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, v := range variants {
		rs := results[v]
		sysShare := make([]float64, len(rs))
		wall := make([]float64, len(rs))
		for i, r := range rs {
			sysShare[i] = float64(r.SysNS) / float64(r.UserNS+r.SysNS)
			wall[i] = float64(r.Events) / float64(r.WallNS) * 1e9
		}
		med, lo, hi := stats(perCPUSecond(rs))
		fmt.Printf("| %s | %s | %.0fk (%.0fk-%.0fk) | %.2f | %.0f %% | %.0fk |\n", v.comp, v.client(),
			med/1e3, lo/1e3, hi/1e3, 1e6/med, median(sysShare)*100, median(wall)/1e3)
	}
	printRatios(variants, results)
	return nil
}

// floodVariant is one client of the flood: shardfleet's with a GOMAXPROCS
// value, or a peer's with one of its inflaters.
type floodVariant struct {
	comp    string
	peer    string // "" for shardfleet's own client
	setting string // GOMAXPROCS, or the peer's inflater
}

func (v floodVariant) String() string { return v.comp + ", " + v.client() }

func (v floodVariant) client() string {
	if v.peer == "" {
		return "shardfleet, GOMAXPROCS " + v.setting
	}
	return peers[v.peer].label + ", " + v.setting
}

// run runs the variant's client once against the flood and decodes its
// result into r.
func (v floodVariant) run(r *floodResult, floodURL, peerDir string, events int) error {
	if v.peer != "" {
		return peers[v.peer].run(r, filepath.Join(peerDir, v.peer), floodURL, v.setting, events)
	}
	return runChild(r, procsEnv(v.setting), "client", "-url", floodURL+compressQuery(v.comp),
		"-compression", v.comp, "-events", strconv.Itoa(events))
}

// floodVariants returns shardfleet's client for every combination of the
// comma-separated compressions and GOMAXPROCS values, in order.
func floodVariants(comps, procs string) []floodVariant {
	var vs []floodVariant
	for _, v := range crossProduct(comps, procs) {
		vs = append(vs, floodVariant{comp: v.comp, setting: v.other})
	}
	return vs
}

// interleave puts each compression's peer variants right after shardfleet's
// of the same compression, so that the runs compared are close in time.
func interleave(ours, theirs []floodVariant) []floodVariant {
	var vs []floodVariant
	for i, v := range ours {
		vs = append(vs, v)
		if i+1 < len(ours) && ours[i+1].comp == v.comp {
			continue
		}
		for _, p := range theirs {
			if p.comp == v.comp {
				vs = append(vs, p)
			}
		}
	}
	return vs
}

func perCPUSecond(rs []floodResult) []float64 {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = float64(r.Events) / float64(r.UserNS+r.SysNS) * 1e9
	}
	return xs
}

// printRatios prints, for every compression a peer ran, shardfleet's events
// per CPU-second over the peer's: the ratio of the medians, and the range of
// the ratios of the two runs of one repetition. It names the peers' versions.
func printRatios(variants []floodVariant, results map[floodVariant][]floodResult) {
	var lines, versions []string
	for _, o := range variants {
		if o.peer != "" {
			continue
		}
		ours := perCPUSecond(results[o])
		for _, p := range variants {
			if p.peer == "" || p.comp != o.comp {
				continue
			}
			theirs := perCPUSecond(results[p])
			paired := make([]float64, len(ours))
			for i := range ours {
				paired[i] = ours[i] / theirs[i]
			}
			_, lo, hi := stats(paired)
			lines = append(lines, fmt.Sprintf("| %s | %s | %s | %.2f × (%.2f-%.2f) |", o.comp, o.client(), p.client(),
				median(ours)/median(theirs), lo, hi))
			if v := results[p][0].Peer; !slices.Contains(versions, v) {
				versions = append(versions, v)
			}
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Println("\nshardfleet / peer, events per CPU-second: ratio of the medians (range of the ratios within one repetition)")
	fmt.Println("| compression | shardfleet | peer | ratio |")
	fmt.Println("|---|---|---|---|")
	for _, l := range lines {
		fmt.Println(l)
	}
	fmt.Printf("peers: %s\n", strings.Join(versions, "; "))
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
	return decodeOutput(v, cmd)
}

// decodeOutput runs cmd, its stderr going to ours, and decodes its stdout as
// JSON into v.
func decodeOutput(v any, cmd *exec.Cmd) error {
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
