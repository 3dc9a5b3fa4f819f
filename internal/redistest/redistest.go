// Package redistest starts real redis-server processes for tests, on free
// loopback ports, so that tests can restart, kill, pause or flush them.
//
// It is for tests only. It needs redis-server on PATH (Debian: redis-server);
// when it is missing, Start skips the test unless REDISTEST_REQUIRE=1, in which
// case it fails (CI sets it, so a missing server is never a silent skip).
package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one redis-server process.
type Server struct {
	mu   sync.Mutex
	port int
	dir  string
	args []string
	conf string // config file, the first argument when set (a sentinel needs one it can rewrite)
	cmd  *exec.Cmd
	done chan struct{}
}

// Option adds redis-server arguments, e.g. Option("--requirepass", "s3cret").
type Option []string

// Start starts a redis-server for t and stops it when t ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	return startWithPorts(t, freePort, opts...)
}

// startWithPorts is Start with the port chosen by pick.
func startWithPorts(t testing.TB, pick func() (int, error), opts ...Option) *Server {
	t.Helper()
	s, err := startServer(t.TempDir(), pick, opts...)
	if errors.Is(err, exec.ErrNotFound) && os.Getenv("REDISTEST_REQUIRE") != "1" {
		t.Skip("redistest: redis-server not on PATH")
	}
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartServer starts a redis-server with its files in dir. The caller must Stop it.
func StartServer(dir string, opts ...Option) (*Server, error) {
	return startServer(dir, freePort, opts...)
}

func startServer(dir string, pick func() (int, error), opts ...Option) (*Server, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, fmt.Errorf("redis-server: %w", err)
	}
	s := &Server{dir: dir}
	for _, o := range opts {
		s.args = append(s.args, o...)
	}
	if err := s.startOnFreePort(pick); err != nil {
		return nil, err
	}
	return s, nil
}

// startOnFreePort starts s on a port pick chooses, trying another when the
// one it picked was taken meanwhile.
func (s *Server) startOnFreePort(pick func() (int, error)) error {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := pick()
		if err != nil {
			return err
		}
		s.port = port
		if lastErr = s.start(); lastErr == nil {
			return nil
		}
	}
	return lastErr
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Port is the server's TCP port.
func (s *Server) Port() int { return s.port }

// URL is a redis:// URL for the server.
func (s *Server) URL() string { return "redis://" + s.Addr() }

// Client returns a client for the server, closed when t ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (s *Server) start() error {
	var args []string
	if s.conf != "" {
		args = append(args, s.conf)
	}
	args = append(append(args,
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--dir", s.dir, "--save", "", "--appendonly", "no",
		"--logfile", s.logFile(),
	), s.args...)
	cmd := exec.Command("redis-server", args...)
	// Own process group so that a killed test does not leave it behind either.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	if err := s.waitReady(5 * time.Second); err != nil {
		s.Kill()
		return err
	}
	return nil
}

// logFile is where the server logs.
func (s *Server) logFile() string {
	return filepath.Join(s.dir, "redis-"+strconv.Itoa(s.port)+".log")
}

func (s *Server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", s.Addr(), 200*time.Millisecond)
		if err == nil {
			_, _ = conn.Write([]byte("PING\r\n"))
			_ = conn.SetReadDeadline(time.Now().Add(time.Second))
			buf := make([]byte, 64)
			n, _ := conn.Read(buf)
			_ = conn.Close()
			// +PONG, or -NOAUTH when a password is set: either way it serves.
			if n > 0 && (strings.HasPrefix(string(buf[:n]), "+PONG") || strings.HasPrefix(string(buf[:n]), "-NOAUTH")) {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("redis-server on port %d exited at start (see %s)", s.port, s.dir)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on port %d not ready after %v", s.port, timeout)
		}
		time.Sleep(10 * time.Millisecond) // polling a port; no event to wait on
	}
}

// Kill sends SIGKILL and waits for the process to exit. Without persistence,
// its data is gone.
func (s *Server) Kill() { s.signalAndWait(syscall.SIGKILL) }

// Stop stops the server (SIGTERM, then SIGKILL after 5 s).
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Restart kills the server and starts a new one on the same port (data lost,
// run ID changed), as a crash and restart without persistence.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Kill()
	if err := s.start(); err != nil {
		t.Fatalf("redistest: restart: %v", err)
	}
}

// RestartServer is Restart for callers without a testing.TB.
func (s *Server) RestartServer() error {
	s.Kill()
	return s.start()
}

// Pause stops the process (SIGSTOP): connections stay open, nothing answers.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused process (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

func (s *Server) signalAndWait(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	<-done
}

// Do runs one command on a fresh connection, for test set-up.
func (s *Server) Do(ctx context.Context, args ...any) (any, error) {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	return c.Do(ctx, args...).Result()
}

// CommandCalls reads INFO commandstats: how many times each command ran
// since the server started (or CONFIG RESETSTAT), by lower-case name
// ("evalsha", "hset"). Commands that scripts call count too, so a test can
// tell how often a script ran and what it wrote.
func (s *Server) CommandCalls(ctx context.Context) (map[string]int64, error) {
	info, err := s.Do(ctx, "INFO", "commandstats")
	if err != nil {
		return nil, fmt.Errorf("info commandstats: %w", err)
	}
	text, _ := info.(string)
	out := map[string]int64{}
	for line := range strings.Lines(text) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd {
			continue
		}
		for kv := range strings.SplitSeq(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("info commandstats: %s: %w", line, err)
				}
				out[name] = n
			}
		}
	}
	return out, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
