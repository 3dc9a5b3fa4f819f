package faultproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer echoes lines back; it is closed, and waited for, at cleanup.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(c, c) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func newProxy(t *testing.T) *Proxy {
	t.Helper()
	p, err := New(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func dial(t *testing.T, p *Proxy) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, bufio.NewReader(c)
}

// roundTrip writes msg and reads it back, with a read deadline of wait.
func roundTrip(c net.Conn, r *bufio.Reader, msg string, wait time.Duration) (string, error) {
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	return r.ReadString('\n')
}

func TestPassForwards(t *testing.T) {
	p := newProxy(t)
	c, r := dial(t, p)
	got, err := roundTrip(c, r, "hello", 5*time.Second)
	if err != nil || got != "hello\n" {
		t.Fatalf("round trip = %q, %v", got, err)
	}
}

func TestBlackholeHoldsBytesUntilHeal(t *testing.T) {
	p := newProxy(t)
	c, r := dial(t, p)
	if _, err := roundTrip(c, r, "warm", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Blackhole()
	_, err := roundTrip(c, r, "held", 100*time.Millisecond)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read through a black hole: %v, want a timeout", err)
	}
	p.Heal()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := r.ReadString('\n')
	if err != nil || got != "held\n" {
		t.Fatalf("after heal got %q, %v; want the held bytes", got, err)
	}
}

func TestResetBreaksOpenConnectionsOnly(t *testing.T) {
	p := newProxy(t)
	c, r := dial(t, p)
	if _, err := roundTrip(c, r, "warm", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := p.Reset(); n < 1 {
		t.Fatalf("Reset hit %d connections, want at least 1", n)
	}
	if _, err := roundTrip(c, r, "after", 5*time.Second); err == nil {
		t.Fatal("a reset connection still carried data")
	}
	c2, r2 := dial(t, p)
	if got, err := roundTrip(c2, r2, "new", 5*time.Second); err != nil || got != "new\n" {
		t.Fatalf("new connection after reset: %q, %v", got, err)
	}
}

func TestRefuseResetsNewConnections(t *testing.T) {
	p := newProxy(t)
	p.Refuse()
	// The reset may already fail the dial, or the first read.
	if c, err := net.Dial("tcp", p.Addr()); err == nil {
		_, err := roundTrip(c, bufio.NewReader(c), "x", 5*time.Second)
		_ = c.Close()
		if err == nil {
			t.Fatal("a refused connection carried data")
		}
	}
	p.Heal()
	c2, r2 := dial(t, p)
	if got, err := roundTrip(c2, r2, "ok", 5*time.Second); err != nil || got != "ok\n" {
		t.Fatalf("after heal: %q, %v", got, err)
	}
	if acc, resets := p.Stats(); acc < 2 || resets < 1 {
		t.Errorf("stats accepted=%d resets=%d", acc, resets)
	}
}

func TestLatencyStillDelivers(t *testing.T) {
	p := newProxy(t)
	p.SetLatency(20 * time.Millisecond)
	if f, d := p.Fault(); f != Latency || d != 20*time.Millisecond {
		t.Fatalf("Fault() = %v %v", f, d)
	}
	c, r := dial(t, p)
	if got, err := roundTrip(c, r, "slow", 5*time.Second); err != nil || got != "slow\n" {
		t.Fatalf("round trip with latency = %q, %v", got, err)
	}
}

func TestCloseWhileBlackholedReturns(t *testing.T) {
	p := newProxy(t)
	c, _ := dial(t, p)
	p.Blackhole()
	_, _ = c.Write([]byte("stuck\n"))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	for _, tc := range []struct {
		name, field string
		up          string
		opts        []Option
	}{
		{"no upstream", "Upstream", "", nil},
		{"no listen addr", "ListenAddr", "127.0.0.1:1", []Option{WithListenAddr("")}},
		{"zero dial timeout", "DialTimeout", "127.0.0.1:1", []Option{WithDialTimeout(0)}},
		{"zero buffer", "BufferSize", "127.0.0.1:1", []Option{WithBufferSize(0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.up, tc.opts...)
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tc.field || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New: %v, want a ConfigError on %s", err, tc.field)
			}
		})
	}
}
