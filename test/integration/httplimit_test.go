package integration

import (
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var writeNofileOnce sync.Once

// startWorkerNofile starts a worker like fleet.startWorkerWith, limited to
// nofile open files (soft and hard limit, so the Go runtime cannot raise it),
// as in the issue's `ulimit -n`.
func (f *fleet) startWorkerNofile(id string, nofile int, extra ...string) *proc {
	f.t.Helper()
	p := startNofile(f.t, "worker "+id, nofile, append(f.workerEnv(id), extra...))
	f.workers[id] = p
	return p
}

func startNofile(t testing.TB, name string, nofile int, env []string) *proc {
	t.Helper()
	writeNofileOnce.Do(func() {
		script := "#!/bin/sh\n# worker-nofile N: the worker with at most N open files\nulimit -n \"$1\" && exec \"$(dirname \"$0\")/worker\"\n"
		if err := os.WriteFile(filepath.Join(binDir, "worker-nofile"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	})
	return startProc(t, name, env, "worker-nofile", strconv.Itoa(nofile))
}

// flood opens n connections to addr, sends a keep-alive request on each and
// holds them until the test ends. Connections the server refuses are skipped.
func flood(t *testing.T, addr string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			continue
		}
		t.Cleanup(func() { _ = c.Close() })
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: w\r\n\r\n")
	}
}

// floodSize is well above workerNofile: without a connection limit, the
// flood alone uses up the worker's descriptors.
const (
	workerNofile = 128
	floodSize    = 300
)

// Under `ulimit -n 128`, a flood of 300 held HTTP connections to a fleet
// worker (HTTP_MAX_CONNS=16) neither stops its lease renewals nor its new
// shards: its shards stay READY, it takes over every shard of a worker
// killed during the flood, /healthz answers on a connection opened before
// the flood, and no socket fails with "too many open files". The control
// run, a worker without a useful limit, does log that error under the same
// flood.
func TestHTTPFloodDoesNotStarveShards(t *testing.T) {
	t.Parallel() // own redis-server, fake and workers: independent of every other test
	raiseFileLimit(t)
	f := newFleet(t, 4, 100)

	t.Run("control: no limit", func(t *testing.T) {
		addr := freeAddr(t)
		p := startNofile(t, "worker sim", workerNofile, []string{"SIM=true", "HTTP_ADDR=" + addr,
			"HTTP_MAX_CONNS=1000000", "SUMMARY_INTERVAL=0"})
		poll(t, "the sim worker to serve HTTP", 10*time.Second, func() bool { return strings.Contains(p.out.String(), "http: serving") })
		flood(t, addr, floodSize)
		poll(t, `"too many open files" without a connection limit`, 10*time.Second, func() bool {
			return strings.Contains(p.out.String(), "too many open files")
		})
	})

	w1 := f.startWorkerNofile("w1", workerNofile, "HTTP_MAX_CONNS=16")
	f.startWorker("w2")
	f.waitAllReady("every shard READY on w1 and w2")
	addr := envValue(w1.cmd.Env, "HTTP_ADDR")
	probe := &http.Client{Transport: &http.Transport{}}
	defer probe.CloseIdleConnections()
	healthz := func() (reused bool) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/healthz", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}))
		resp, err := probe.Do(req)
		if err != nil {
			t.Fatalf("/healthz of w1: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/healthz of w1: %s", resp.Status)
		}
		return reused
	}
	healthz() // opens the probe's connection before the flood

	flood(t, addr, floodSize)
	if !healthz() {
		t.Error("/healthz during the flood did not reuse the connection opened before it")
	}
	f.workers["w2"].signal(syscall.SIGKILL)
	f.waitAllReady("every shard READY on w1, under the flood, after w2's kill -9", "w1")
	f.checkStream()
	if strings.Contains(w1.out.String(), "too many open files") {
		t.Errorf("w1 ran out of descriptors:\n%s", lastLines(w1.out.String(), 20))
	}
}
