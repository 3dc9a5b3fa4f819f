package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/internal/redistest"
	"github.com/shardfleet/shardfleet/internal/worker"
)

// Helpers of the scale, bad-input and security tests.

// startWorkerWith starts a worker like fleet.startWorker, with extra
// environment entries appended (a later entry of the same name wins, as
// os/exec keeps the last duplicate).
func (f *fleet) startWorkerWith(id string, extra ...string) *proc {
	f.t.Helper()
	env := append(f.workerEnv(id), extra...)
	p := startProc(f.t, "worker "+id, env, "worker")
	f.workers[id] = p
	return p
}

// workerEnv is the environment fleet.startWorker gives a worker.
func (f *fleet) workerEnv(id string) []string {
	return []string{
		"DISCORD_TOKEN=" + f.token, "REDIS_URL=" + f.redis.URL(), "KEY_PREFIX=" + prefix, "WORKER_ID=" + id,
		"SHARD_COUNT=" + strconv.Itoa(f.shards), "MAX_CONCURRENCY=1",
		"DISCORD_API_URL=" + f.fake.apiURL, "GATEWAY_URL=" + f.fake.gatewayURL,
		"LEASE_TTL=" + leaseTTL.String(), "LEASE_RENEW_INTERVAL=" + renewInterval.String(),
		"IDENTIFY_WINDOW=" + identifyWindow.String(), "IDENTIFY_MARGIN=20ms",
		"HTTP_ADDR=" + freeAddr(f.t), "SHUTDOWN_TIMEOUT=5s", "SUMMARY_INTERVAL=0", "LOG_LEVEL=info",
	}
}

// envValue returns the last value of name in env.
func envValue(env []string, name string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v = val
		}
	}
	return v
}

// raiseFileLimit lifts RLIMIT_NOFILE to its hard limit, for this process and
// the children it starts (thousands of sockets in the scale benchmark).
func raiseFileLimit(t testing.TB) uint64 {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatalf("setrlimit: %v", err)
		}
	}
	return lim.Cur
}

// vmRSSKiB reads a process's resident set size from /proc/PID/status.
func vmRSSKiB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// redisInfo parses INFO section into field -> value.
func redisInfo(ctx context.Context, c *redis.Client, section string) (map[string]string, error) {
	s, err := c.Info(ctx, section).Result()
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(s, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			m[k] = v
		}
	}
	return m, nil
}

// redisSample is a point-in-time reading of Redis's counters.
type redisSample struct {
	at       time.Time
	commands int64            // total_commands_processed
	cpu      float64          // used_cpu_sys + used_cpu_user, seconds
	calls    map[string]int64 // commandstats: command -> calls
}

func sampleRedis(ctx context.Context, c *redis.Client) (redisSample, error) {
	s := redisSample{at: time.Now(), calls: map[string]int64{}}
	stats, err := redisInfo(ctx, c, "stats")
	if err != nil {
		return s, err
	}
	s.commands, _ = strconv.ParseInt(stats["total_commands_processed"], 10, 64)
	cpu, err := redisInfo(ctx, c, "cpu")
	if err != nil {
		return s, err
	}
	sys, _ := strconv.ParseFloat(cpu["used_cpu_sys"], 64)
	user, _ := strconv.ParseFloat(cpu["used_cpu_user"], 64)
	s.cpu = sys + user
	cs, err := redisInfo(ctx, c, "commandstats")
	if err != nil {
		return s, err
	}
	for k, v := range cs {
		name, ok := strings.CutPrefix(k, "cmdstat_")
		if !ok {
			continue
		}
		for _, kv := range strings.Split(v, ",") {
			if n, ok := strings.CutPrefix(kv, "calls="); ok {
				s.calls[name], _ = strconv.ParseInt(n, 10, 64)
			}
		}
	}
	return s, nil
}

// scriptCommands are the commands that run a Lua script or function.
var scriptCommands = []string{"evalsha", "eval", "evalsha_ro", "eval_ro", "fcall", "fcall_ro"}

// newFleetWithFake is newFleet with a fake the caller started (its own
// flags); the caller must have called needBinaries before startFake.
func newFleetWithFake(t testing.TB, shards int, fk *fake) *fleet {
	t.Helper()
	r := redistest.Start(t)
	return &fleet{t: t, redis: r, client: r.Client(t), fake: fk, shards: shards, token: "itest-token", workers: map[string]*proc{}}
}

// pollEvery is poll with a chosen period, for conditions costly to check.
func pollEvery(t testing.TB, what string, timeout, every time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(every) // polling a condition, with a deadline
	}
}

// readyOwners reads the fleet under pfx from Redis: shard -> worker ID, READY
// shards of live workers only.
func readyOwners(t testing.TB, c *redis.Client, pfx string) map[int]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := worker.ReadFleet(ctx, c, pfx)
	if err != nil {
		t.Fatalf("read fleet %s: %v", pfx, err)
	}
	return readyOwnersOf(st)
}

// checkStreamOf is fleet.checkStream for the fleet under pfx served by fk:
// the load stops, every connected session's dispatches get committed, and
// per session the streams' seqs equal the fake's, each once. c reads every
// partition of the fleet: on Redis Cluster, a cluster client.
func checkStreamOf(t testing.TB, c redis.UniversalClient, fk *fake, pfx string) int {
	t.Helper()
	ctx := context.Background()
	keys := storedKeys(t, c, pfx)
	fk.post(t, "/_fake/events-per-second?rate=0") // answered once no dispatch is under way: the seqs below are final
	poll(t, "every connected session committed", 15*time.Second, func() bool {
		for _, s := range fk.sessions(t) {
			if !s.Connected || s.Ended {
				continue
			}
			vals, err := c.HMGet(ctx, keys.Session(lease.ShardKey{ID: s.ShardID, Count: s.ShardCount}), "session_id", "seq").Result()
			if err != nil || vals[0] != s.ID || vals[1] != strconv.Itoa(s.Seq) {
				return false
			}
		}
		return true
	})
	inStream, entries := streamSeqsOf(t, c, keys)
	total := 0
	for _, s := range fk.sessions(t) {
		sent := fk.sentSeqs(t, s.ID)
		if got := inStream[s.ID]; fmt.Sprint(got) != fmt.Sprint(sent) {
			t.Errorf("%s shard %d session %s: stream has seqs %v, the fake sent %v", pfx, s.ShardID, s.ID, got, sent)
		}
		total += len(sent)
	}
	if total != entries {
		t.Errorf("%s: the streams hold %d events, the fake sent %d", pfx, entries, total)
	}
	if total == 0 {
		t.Errorf("%s: no events flowed", pfx)
	}
	return total
}

// storedKeys are the keys of the fleet under pfx, split into the partition
// count it stored (none stored: 1, the single-tag layout).
func storedKeys(t testing.TB, c redis.UniversalClient, pfx string) keyspace.Keys {
	t.Helper()
	keys := keyspace.NewKeys(pfx)
	n, err := c.Get(context.Background(), keys.PartitionCount()).Int()
	if errors.Is(err, redis.Nil) {
		n, err = 1, nil
	}
	if err != nil {
		t.Fatalf("read the fleet's partition count: %v", err)
	}
	if keys, err = keys.WithPartitions(n); err != nil {
		t.Fatal(err)
	}
	return keys
}

// streamSeqsOf reads every partition's stream of keys: session -> seqs, in
// stream order (a session's shard lives in one partition), and the number of
// entries.
func streamSeqsOf(t testing.TB, c redis.UniversalClient, keys keyspace.Keys) (map[string][]int, int) {
	t.Helper()
	out, entries := map[string][]int{}, 0
	for p := range keys.Partitions() {
		msgs, err := c.XRange(context.Background(), keys.Events(p), "-", "+").Result()
		if err != nil {
			t.Fatalf("read partition %d's stream: %v", p, err)
		}
		for _, m := range msgs {
			seq, _ := strconv.Atoi(fmt.Sprint(m.Values["seq"]))
			sess := fmt.Sprint(m.Values["session"])
			out[sess] = append(out[sess], seq)
		}
		entries += len(msgs)
	}
	return out, entries
}

// dumpRedis reads every key of c (SCAN) and renders each value as text by
// its type: strings, hashes, lists, sets, sorted sets and streams (every
// entry). It returns key -> text.
func dumpRedis(t testing.TB, c *redis.Client) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	iter := c.Scan(ctx, 0, "*", 500).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		typ, err := c.Type(ctx, k).Result()
		if err != nil {
			t.Fatalf("TYPE %s: %v", k, err)
		}
		var v any
		switch typ {
		case "string":
			v, err = c.Get(ctx, k).Result()
		case "hash":
			v, err = c.HGetAll(ctx, k).Result()
		case "list":
			v, err = c.LRange(ctx, k, 0, -1).Result()
		case "set":
			v, err = c.SMembers(ctx, k).Result()
		case "zset":
			v, err = c.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "stream":
			v, err = c.XRange(ctx, k, "-", "+").Result()
		case "none":
			continue // expired between SCAN and TYPE
		default:
			t.Fatalf("key %s has unexpected type %s", k, typ)
		}
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatalf("read %s (%s): %v", k, typ, err)
		}
		out[k] = typ + " " + fmt.Sprint(v)
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN: %v", err)
	}
	return out
}

// httpText GETs url and returns the body ("" on error, which is reported).
func httpText(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
	}
	return string(b)
}

// runWorkerCmd runs the worker binary to completion with env and args and
// returns its combined output and exit code.
func runWorkerCmd(t testing.TB, timeout time.Duration, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "worker"), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("worker %v did not exit within %v; output:\n%s", args, timeout, out)
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run worker: %v", err)
	}
	return string(out), code
}

// postBody POSTs body to the fake's control API and returns the answer.
func (fk *fake) postBody(t testing.TB, path string, body []byte) string {
	t.Helper()
	resp, err := http.Post(fk.url+path, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s %s", path, resp.Status, b)
	}
	return string(b)
}

// checkNoPanic fails if a process printed a Go panic or a fatal runtime error.
func checkNoPanic(t testing.TB, procs ...*proc) {
	t.Helper()
	for _, p := range procs {
		out := p.out.String()
		for _, bad := range []string{"panic:", "fatal error:", "goroutine 1 [", "DATA RACE"} {
			if strings.Contains(out, bad) {
				t.Errorf("%s printed %q:\n%s", p.name, bad, lastLines(out, 60))
			}
		}
	}
}

// streamDuplicates counts stream entries whose (session, seq) came before.
func streamDuplicates(t testing.TB, c *redis.Client, pfx string) int {
	t.Helper()
	msgs, err := c.XRange(context.Background(), pfx+"events", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	seen, dups := map[string]bool{}, 0
	for _, m := range msgs {
		k := fmt.Sprint(m.Values["session"], "/", m.Values["seq"])
		if seen[k] {
			dups++
		}
		seen[k] = true
	}
	return dups
}
