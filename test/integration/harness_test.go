package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/shardfleet/shardfleet/internal/redistest"
	"github.com/shardfleet/shardfleet/internal/testutil"
	"github.com/shardfleet/shardfleet/internal/worker"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

var (
	binDir    string // holds worker and fakediscord
	buildOnce sync.Once
	skipBuild string // why the binaries are missing
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "shardfleet-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// needBinaries builds cmd/worker and cmd/fakediscord once per package run, on
// first use (with -race when the tests run with it), and skips the test when
// they do not build; under CI (CI=true or REDISTEST_REQUIRE=1) it fails
// instead, so a broken build is never a green skip.
func needBinaries(t testing.TB) {
	t.Helper()
	buildOnce.Do(func() {
		for _, cmd := range []string{"worker", "fakediscord"} {
			args := []string{"build", "-o", filepath.Join(binDir, cmd)}
			if raceBuild {
				args = append(args, "-race")
			}
			build := exec.Command("go", append(args, "github.com/shardfleet/shardfleet/cmd/"+cmd)...)
			if out, err := build.CombinedOutput(); err != nil {
				skipBuild = fmt.Sprintf("cannot build cmd/%s: %v\n%s", cmd, err, out)
				return
			}
		}
	})
	if skipBuild != "" {
		if requireBinaries() {
			t.Fatal(skipBuild)
		}
		t.Skip(skipBuild)
	}
}

// requireBinaries reports whether a failed build must fail the tests (CI)
// rather than skip them.
func requireBinaries() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci || os.Getenv("REDISTEST_REQUIRE") == "1"
}

// Compressed fleet timings.
const (
	leaseTTL       = 1500 * time.Millisecond
	renewInterval  = 300 * time.Millisecond
	identifyWindow = 100 * time.Millisecond
	// fakeIdentifyWindow is the pacing the fake checks: below the workers'
	// 100 ms + 20 ms margin, because the fake times an IDENTIFY when it reads
	// it, and a loaded machine delays reads by more than the margin (a new
	// fleet IDENTIFYs while its other worker processes are still starting).
	// Two grants of one bucket at once still show.
	fakeIdentifyWindow = 60 * time.Millisecond
	prefix             = "{itest}:"
)

// proc is a child process with its output captured.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *testutil.LogBuffer
	done chan struct{}
	err  error // Wait's result, after done
}

func startProc(t testing.TB, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, out: &testutil.LogBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(binDir, bin), args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", name, lastLines(p.out.String(), 40))
		}
	})
	return p
}

func (p *proc) signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(sig)
	}
}

// wait waits for the process to exit, up to timeout.
func (p *proc) wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %v", p.name, timeout)
		return nil
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// fake is a cmd/fakediscord process and a client for its control API.
type fake struct {
	*proc
	url, apiURL, gatewayURL string
}

func startFake(t testing.TB, shards int, eventsPerSecond float64, extra ...string) *fake {
	t.Helper()
	args := append([]string{"-addr", "127.0.0.1:0", "-token", "itest-token", "-shards", strconv.Itoa(shards),
		"-guilds", strconv.Itoa(8 * shards), "-identify-window", fakeIdentifyWindow.String(),
		"-heartbeat-interval", "1s", "-events-per-second", fmt.Sprint(eventsPerSecond)}, extra...)
	p := startProc(t, "fakediscord", nil, "fakediscord", args...)
	f := &fake{proc: p}
	poll(t, "fakediscord to print its URLs", 10*time.Second, func() bool {
		for _, line := range strings.Split(p.out.String(), "\n") {
			if u, ok := strings.CutPrefix(line, "fakediscord listening on "); ok {
				f.url = strings.TrimSpace(u)
			}
			if u, ok := strings.CutPrefix(line, "rest: "); ok {
				f.apiURL = strings.TrimSpace(u)
			}
			if u, ok := strings.CutPrefix(line, "gateway: "); ok {
				f.gatewayURL = strings.TrimSpace(u)
			}
		}
		return f.url != "" && f.apiURL != "" && f.gatewayURL != ""
	})
	return f
}

func (f *fake) get(t testing.TB, path string, v any) {
	t.Helper()
	resp, err := http.Get(f.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", path, resp.Status, body)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

func (f *fake) post(t testing.TB, path string) {
	t.Helper()
	resp, err := http.Post(f.url+path, "application/json", nil)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s", path, resp.Status)
	}
}

// fakeGet GETs one of the fake's /_fake/ records and decodes it as T.
func fakeGet[T any](t testing.TB, f *fake, path string) T {
	var v T
	f.get(t, path, &v)
	return v
}

func (f *fake) stats(t testing.TB) gatewaytest.Stats {
	return fakeGet[gatewaytest.Stats](t, f, "/_fake/stats")
}

func (f *fake) duplicates(t testing.TB) []gatewaytest.DuplicateRecord {
	return fakeGet[[]gatewaytest.DuplicateRecord](t, f, "/_fake/duplicates")
}

func (f *fake) sessions(t testing.TB) []gatewaytest.SessionInfo {
	return fakeGet[[]gatewaytest.SessionInfo](t, f, "/_fake/sessions")
}

func (f *fake) identifies(t testing.TB) []gatewaytest.IdentifyRecord {
	return fakeGet[[]gatewaytest.IdentifyRecord](t, f, "/_fake/identifies")
}

func (f *fake) resumes(t testing.TB) []gatewaytest.ResumeRecord {
	return fakeGet[[]gatewaytest.ResumeRecord](t, f, "/_fake/resumes")
}

func (f *fake) closes(t testing.TB) []gatewaytest.CloseRecord {
	return fakeGet[[]gatewaytest.CloseRecord](t, f, "/_fake/closes")
}

func (f *fake) sentSeqs(t testing.TB, session string) []int {
	var evs []gatewaytest.SentEvent
	f.get(t, "/_fake/events?session="+session, &evs)
	seqs := make([]int, len(evs))
	for i, e := range evs {
		seqs[i] = e.Seq
	}
	return seqs
}

// fleet is one test's world: a redis-server, the fake, and worker processes.
type fleet struct {
	t       testing.TB
	redis   *redistest.Server
	client  *redis.Client
	fake    *fake
	shards  int
	token   string
	workers map[string]*proc
	// cliRedisURL, when set, is the REDIS_URL of the worker CLI (workerCLI)
	// instead of redis's: a Sentinel world's, which follows a failover.
	cliRedisURL string
}

func newFleet(t testing.TB, shards int, eventsPerSecond float64) *fleet {
	t.Helper()
	needBinaries(t)
	return newFleetWithFake(t, shards, startFake(t, shards, eventsPerSecond))
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startWorker starts a worker process named id; extra settings (NAME=value)
// override the defaults.
func (f *fleet) startWorker(id string, extra ...string) *proc {
	f.t.Helper()
	env := []string{
		"DISCORD_TOKEN=" + f.token, "REDIS_URL=" + f.redis.URL(), "KEY_PREFIX=" + prefix, "WORKER_ID=" + id,
		"SHARD_COUNT=" + strconv.Itoa(f.shards), "MAX_CONCURRENCY=1",
		"DISCORD_API_URL=" + f.fake.apiURL, "GATEWAY_URL=" + f.fake.gatewayURL,
		"LEASE_TTL=" + leaseTTL.String(), "LEASE_RENEW_INTERVAL=" + renewInterval.String(),
		"IDENTIFY_WINDOW=" + identifyWindow.String(), "IDENTIFY_MARGIN=20ms",
		"HTTP_ADDR=" + freeAddr(f.t), "SHUTDOWN_TIMEOUT=5s", "SUMMARY_INTERVAL=0", "LOG_LEVEL=info",
	}
	env = append(env, extra...)
	p := startProc(f.t, "worker "+id, env, "worker")
	f.workers[id] = p
	return p
}

// owners reads the fleet from Redis: shard -> worker ID, ready shards only,
// live workers only.
func (f *fleet) owners() (map[int]string, []worker.Status) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := worker.ReadFleet(ctx, f.client, prefix)
	if err != nil {
		f.t.Fatalf("read fleet: %v", err)
	}
	return readyOwnersOf(st), st
}

// readyOwnersOf maps each READY shard of a fleet read from Redis to its
// worker, skipping workers whose lease has expired.
func readyOwnersOf(st []worker.Status) map[int]string {
	owners := map[int]string{}
	for _, w := range st {
		if w.LeaseExpiresInMS < 0 {
			continue
		}
		for _, s := range w.Shards {
			if s.Status == "ready" {
				owners[s.ID] = w.WorkerID
			}
		}
	}
	return owners
}

// waitAllReady polls until every shard is READY on one of the live workers in
// among (nil: any) and no two workers report the same shard.
func (f *fleet) waitAllReady(what string, among ...string) map[int]string {
	f.t.Helper()
	var owners map[int]string
	poll(f.t, what, 30*time.Second, func() bool {
		var st []worker.Status
		owners, st = f.owners()
		if len(owners) != f.shards {
			return false
		}
		seen := map[int]bool{}
		for _, w := range st {
			if w.LeaseExpiresInMS < 0 {
				continue
			}
			if len(among) > 0 && len(w.Shards) > 0 && !slices.Contains(among, w.WorkerID) {
				return false
			}
			for _, s := range w.Shards {
				if seen[s.ID] {
					return false
				}
				seen[s.ID] = true
			}
		}
		return true
	})
	return owners
}

// checkInvariants asserts the fake's invariants: no identify violation, no
// two live sessions of one shard, no sequence gap.
func (f *fleet) checkInvariants() gatewaytest.Stats {
	f.t.Helper()
	st := f.fake.stats(f.t)
	if st.IdentifyViolations != 0 || st.DuplicateSessions != 0 || st.SequenceGaps != 0 {
		f.t.Errorf("fake invariants broken: %+v", st)
		logViolations(f.t, f.fake.identifies(f.t))
	}
	return st
}

// checkStream stops the load, waits until every connected session's
// dispatches are committed, then compares, per session, the seqs the fake
// sent with the stream's: the same, each once.
func (f *fleet) checkStream() {
	f.t.Helper()
	checkStreamOf(f.t, f.client, f.fake, prefix)
}

// checkNoSecret asserts the token never reached logs or Redis.
func (f *fleet) checkNoSecret() {
	f.t.Helper()
	for id, p := range f.workers {
		if strings.Contains(p.out.String(), f.token) {
			f.t.Errorf("worker %s logged the token", id)
		}
	}
	f.checkNoTokenIn(f.client)
}

// checkNoTokenIn asserts no key or value on the Redis node c holds the
// token. Values are read by type: DUMP compresses long strings, which hides
// a token.
func (f *fleet) checkNoTokenIn(c *redis.Client) {
	f.t.Helper()
	for k, v := range dumpRedis(f.t, c) {
		if strings.Contains(k, f.token) || strings.Contains(v, f.token) {
			f.t.Errorf("redis key %s on %s holds the token", k, c.Options().Addr)
		}
	}
}

// poll polls cond every 20 ms until it holds or timeout passes.
func poll(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	pollEvery(t, what, timeout, 20*time.Millisecond, cond)
}

// linesWith counts output lines of p holding every needle.
func linesWith(p *proc, needles ...string) int { return len(matchingLines(p, needles...)) }

// matchingLines returns the output lines of p holding every needle, in order.
func matchingLines(p *proc, needles ...string) []string {
	var found []string
	sc := bufio.NewScanner(strings.NewReader(p.out.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
lines:
	for sc.Scan() {
		for _, s := range needles {
			if !strings.Contains(sc.Text(), s) {
				continue lines
			}
		}
		found = append(found, sc.Text())
	}
	return found
}
