package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// serveLimited serves a /healthz handler as startHTTP does, with maxConns
// and idle, and stops it when t ends.
func serveLimited(t *testing.T, maxConns int, idle time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(rw, "ok\n") }), idle)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(limitConns(ln, maxConns)) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return ln.Addr().String()
}

// healthz sends GET /healthz on c, keeping it alive, and reads the answer.
func healthz(c net.Conn) error {
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: w\r\n\r\n"); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitClosed blocks until the server closes c, or fails after 3 s: a read
// then ends with EOF or a reset, not with the deadline. 3 s is below every
// fixed timeout of the server (httpReadHeaderTimeout...), so only the
// setting under test can close c in time.
func waitClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := c.Read(make([]byte, 1))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: still open (read: %v)", what, err)
	}
}

// A keep-alive connection that sends nothing after its request is closed by
// the server after HTTP_IDLE_TIMEOUT.
func TestHTTPClosesIdleConnections(t *testing.T) {
	addr := serveLimited(t, 4, 100*time.Millisecond)
	c := dial(t, addr)
	if err := healthz(c); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, c, "an idle keep-alive connection")
}

// Connections beyond HTTP_MAX_CONNS are closed as soon as accepted, while a
// connection within the limit is still served; a closed connection frees its
// slot for the next one.
func TestHTTPRefusesConnectionsOverTheLimit(t *testing.T) {
	const limit = 3
	addr := serveLimited(t, limit, time.Minute)
	held := make([]net.Conn, limit)
	for i := range held {
		held[i] = dial(t, addr)
		if err := healthz(held[i]); err != nil {
			t.Fatalf("connection %d of %d: %v", i+1, limit, err)
		}
	}
	for i := 0; i < 20; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			continue // reset before connect returned: refused as well
		}
		waitClosed(t, c, "a connection over the limit")
		_ = c.Close()
	}
	if err := healthz(held[0]); err != nil {
		t.Fatalf("/healthz on a connection within the limit, during the flood: %v", err)
	}
	_ = held[1].Close()
	poll(t, "a new connection to be served once one closed", 10*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		defer c.Close()
		return healthz(c) == nil
	})
}
