package redislimiter

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The helper process is this test binary re-run with helperEnv set (see
// TestMain): a separate OS process with its own limiter and Redis connections.
const helperEnv = "REDISLIMITER_HELPER"

// helperConfig is passed to the helper in its environment.
type helperConfig struct {
	mode     string // "hold": take Shard, print HELD, block until killed; "load": random load
	addr     string
	prefix   string
	mc       int
	shard    int
	workers  int
	duration time.Duration
	seed     uint64
}

func (c helperConfig) env() []string {
	return append(os.Environ(),
		helperEnv+"="+c.mode, "RL_ADDR="+c.addr, "RL_PREFIX="+c.prefix,
		"RL_MC="+strconv.Itoa(c.mc), "RL_SHARD="+strconv.Itoa(c.shard),
		"RL_WORKERS="+strconv.Itoa(c.workers), "RL_DURATION="+c.duration.String(),
		"RL_SEED="+strconv.FormatUint(c.seed, 10))
}

func runHelper() int {
	atoi := func(k string) int { n, _ := strconv.Atoi(os.Getenv(k)); return n }
	dur, _ := time.ParseDuration(os.Getenv("RL_DURATION"))
	seed, _ := strconv.ParseUint(os.Getenv("RL_SEED"), 10, 64)
	client := redis.NewClient(&redis.Options{Addr: os.Getenv("RL_ADDR"), ContextTimeoutEnabled: true})
	defer client.Close()
	opts := append(testOpts(os.Getenv("RL_PREFIX"), atoi("RL_MC")), WithHolderID(fmt.Sprintf("pid-%d", os.Getpid())))
	l := New(client, opts...)
	defer l.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch os.Getenv(helperEnv) {
	case "hold":
		if err := l.WaitBucket(ctx, atoi("RL_SHARD")); err != nil {
			fmt.Println("ERR", err)
			return 1
		}
		fmt.Println("HELD")
		<-ctx.Done() // killed by the test long before
		return 0
	case "cold":
		return runColdHelper(client, os.Getenv("RL_PREFIX"), atoi("RL_SHARD"), int64(seed))
	case "load":
		fails := runLoad(l, atoi("RL_WORKERS"), dur, seed)
		fmt.Println("DONE", fails)
		return 0
	}
	return 2
}

// runLoad runs workers goroutines for d: each takes the permit of a random
// shard with a random deadline (some cancel before their grant), holds it
// briefly and unlocks. It returns how many waits failed other than by ctx.
func runLoad(l *Limiter, workers int, d time.Duration, seed uint64) int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	fails := 0
	end := time.Now().Add(d)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for time.Now().Before(end) {
				shard := rng.IntN(16)
				timeout := time.Duration(20+rng.IntN(400)) * time.Millisecond
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				err := l.WaitBucket(ctx, shard)
				cancel()
				if err == nil {
					time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond) // simulated IDENTIFY
					l.UnlockBucket(shard)
				} else if ctx.Err() == nil {
					mu.Lock()
					fails++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return fails
}

// startHelper starts a helper process, killed when t ends; lines receives its
// stdout lines.
func startHelper(t *testing.T, c helperConfig) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := helperCmd(c)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper: %v", err)
	}
	lines := make(chan string, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select { // never block the reader: a full buffer drops lines
			case lines <- strings.TrimSpace(sc.Text()):
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
	})
	return cmd, lines
}

// expectLine waits for a line with the given prefix from a helper.
func expectLine(t *testing.T, lines <-chan string, prefix string, timeout time.Duration) string {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("helper exited before printing %q", prefix)
			}
			if strings.HasPrefix(line, prefix) {
				return line
			}
			if strings.HasPrefix(line, "ERR") {
				t.Fatalf("helper: %s", line)
			}
		case <-timer.C:
			t.Fatalf("helper did not print %q within %v", prefix, timeout)
		}
	}
}

// helperCmd is the command that runs this test binary as a helper process.
func helperCmd(c helperConfig) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = c.env()
	return cmd
}
