package gateway

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
)

// TestSocketReadAhead: over a real TCP pair, a read that fills the caller's
// buffer reads ahead; every byte comes out once and in order, flush runs
// only before reads of the kernel socket, and the peer's close comes out as
// io.EOF after the data.
func TestSocketReadAhead(t *testing.T) {
	client, server := tcpPair(t)
	want := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	if _, err := server.Write(want); err != nil {
		t.Fatal(err)
	}
	if err := server.Close(); err != nil {
		t.Fatal(err)
	}
	flushes := 0
	s := &socket{Conn: client, flush: func() { flushes++ }}
	var got []byte
	p := make([]byte, 4096)
	reads := 0
	for {
		n, err := s.Read(p)
		got = append(got, p[:n]...)
		reads++
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, not the %d written, in order", len(got), len(want))
	}
	if flushes >= reads {
		t.Fatalf("%d flushes for %d reads: no read was served ahead", flushes, reads)
	}
	if s.ahead != nil {
		t.Fatal("read-ahead buffer kept after it was used up")
	}
}

// tcpPair returns both ends of a loopback TCP connection, closed at cleanup.
func tcpPair(t *testing.T) (client, server net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Close() })
	return client, server
}
