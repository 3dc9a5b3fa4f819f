package faultproxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/redistest"
)

// lineServer answers every line "ok <line>" and records the lines it got, so
// a test can tell that a request reached it although its reply was lost.
// Push sends unasked bytes on every connection (as pub/sub does).
type lineServer struct {
	addr  string
	mu    sync.Mutex
	got   []string
	conns []net.Conn
}

func startLineServer(t *testing.T) *lineServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &lineServer{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			wg.Go(func() { s.serve(c) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		wg.Wait()
	})
	return s
}

func (s *lineServer) serve(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		s.mu.Lock()
		s.got = append(s.got, line)
		s.mu.Unlock()
		if _, err := c.Write([]byte("ok " + line + "\n")); err != nil {
			return
		}
	}
}

func (s *lineServer) received(line string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.got {
		if g == line {
			return true
		}
	}
	return false
}

func (s *lineServer) push(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_, _ = c.Write([]byte(msg + "\n"))
	}
}

func newDropProxy(t *testing.T, upstream string) *Proxy {
	t.Helper()
	p, err := New(upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestDropRepliesLosesTheReplyNotTheRequest(t *testing.T) {
	srv := startLineServer(t)
	p := newDropProxy(t, srv.addr)
	c, r := dial(t, p)
	if got, err := roundTrip(c, r, "warm", 5*time.Second); err != nil || got != "ok warm\n" {
		t.Fatalf("warm-up: %q, %v", got, err)
	}
	p.DropReplies(1)
	got, err := roundTrip(c, r, "write", 5*time.Second)
	if err == nil {
		t.Fatalf("the reply came through: %q", got)
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		t.Fatalf("the client timed out (%v); want its connection reset", err)
	}
	// The server records a line before it answers, and the proxy cuts when
	// the answer arrives: no need to wait.
	if !srv.received("write") {
		t.Fatal("the request whose reply was dropped never reached the server")
	}
	if n := p.Dropped(); n != 1 {
		t.Fatalf("Dropped() = %d, want 1", n)
	}
	// One drop was armed: the next connection works.
	c2, r2 := dial(t, p)
	if got, err := roundTrip(c2, r2, "again", 5*time.Second); err != nil || got != "ok again\n" {
		t.Fatalf("after the drop: %q, %v", got, err)
	}
	if n := p.Dropped(); n != 1 {
		t.Fatalf("Dropped() = %d after a plain round trip, want 1", n)
	}
}

func TestDropRepliesToMatchingRequestsOnly(t *testing.T) {
	srv := startLineServer(t)
	p := newDropProxy(t, srv.addr)
	c, r := dial(t, p)
	p.DropRepliesTo(1, func(req []byte) bool { return bytes.HasPrefix(req, []byte("target")) })
	if got, err := roundTrip(c, r, "other", 5*time.Second); err != nil || got != "ok other\n" {
		t.Fatalf("a request the rule does not match: %q, %v", got, err)
	}
	if _, err := roundTrip(c, r, "target", 5*time.Second); err == nil {
		t.Fatal("the reply to the matching request came through")
	}
	if !srv.received("target") {
		t.Fatal("the matching request never reached the server")
	}
	if n := p.Dropped(); n != 1 {
		t.Fatalf("Dropped() = %d, want 1", n)
	}
}

func TestDropRepliesSparesUnaskedBytes(t *testing.T) {
	srv := startLineServer(t)
	p := newDropProxy(t, srv.addr)
	c, r := dial(t, p)
	if _, err := roundTrip(c, r, "subscribe", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.DropReplies(1)
	srv.push("news") // no request pending on c: not a reply
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, err := r.ReadString('\n'); err != nil || got != "news\n" {
		t.Fatalf("an unasked message: %q, %v; want it delivered", got, err)
	}
	if _, err := roundTrip(c, r, "ask", 5*time.Second); err == nil {
		t.Fatal("the armed drop did not cut the next reply")
	}
}

func TestHealCancelsArmedDrops(t *testing.T) {
	srv := startLineServer(t)
	p := newDropProxy(t, srv.addr)
	c, r := dial(t, p)
	p.DropReplies(3)
	p.Heal()
	if got, err := roundTrip(c, r, "x", 5*time.Second); err != nil || got != "ok x\n" {
		t.Fatalf("after Heal: %q, %v", got, err)
	}
	p.DropReplies(2)
	p.DropReplies(0)
	if got, err := roundTrip(c, r, "y", 5*time.Second); err != nil || got != "ok y\n" {
		t.Fatalf("after DropReplies(0): %q, %v", got, err)
	}
}

// The fault P4 needs: go-redis writes a command, Redis runs it, the reply is
// lost. Without retries the caller sees a connection error although the
// command ran; with MaxRetries go-redis runs it a second time (INCR, which
// is not idempotent, shows both runs).
func TestDropRepliesMakesGoRedisRetry(t *testing.T) {
	srv := redistest.Start(t)
	direct := srv.Client(t)
	p := newDropProxy(t, srv.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name       string
		maxRetries int
		wantErr    bool
		wantValue  int64
	}{
		{"no retries", -1, true, 1},
		{"retries", 2, false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: tc.maxRetries,
				ContextTimeoutEnabled: true, ReadTimeout: 5 * time.Second})
			defer func() { _ = c.Close() }()
			key := "counter:" + tc.name
			if err := c.Ping(ctx).Err(); err != nil { // a pooled connection, so HELLO is not the next reply
				t.Fatal(err)
			}
			before := p.Dropped()
			p.DropReplies(1)
			n, err := c.Incr(ctx, key).Result()
			if (err != nil) != tc.wantErr {
				t.Fatalf("INCR through a dropped reply: %d, %v; want error %v", n, err, tc.wantErr)
			}
			if !tc.wantErr && n != tc.wantValue {
				t.Fatalf("INCR returned %d, want %d (the retry's answer)", n, tc.wantValue)
			}
			if got, err := direct.Get(ctx, key).Int64(); err != nil || got != tc.wantValue {
				t.Fatalf("%s in Redis = %d, %v; want %d", key, got, err, tc.wantValue)
			}
			if d := p.Dropped() - before; d != 1 {
				t.Fatalf("%d replies dropped, want 1", d)
			}
		})
	}
}
