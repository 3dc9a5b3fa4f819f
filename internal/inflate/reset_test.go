package inflate

import (
	"bytes"
	"testing"
)

// TestResetGivesBackGrownBuffer: after a message larger than the buffer,
// Reset leaves the standard buffer (what a pooled Stream may keep), and a
// Reset of a standard one reuses it.
func TestResetGivesBackGrownBuffer(t *testing.T) {
	var s Stream
	part := bytes.Repeat([]byte("gateway "), 60<<10/8)
	var msg []byte
	for range 2 { // two stored blocks: more than the standard buffer
		n := len(part)
		msg = append(msg, 0, byte(n), byte(n>>8), ^byte(n), ^byte(n>>8))
		msg = append(msg, part...)
	}
	if _, err := s.Message(nil, msg); err != nil {
		t.Fatal(err)
	}
	if cap(s.buf) <= bufSize {
		t.Fatalf("buffer of %d bytes after a %d-byte message: the test needs it grown", cap(s.buf), 2*len(part))
	}
	s.Reset(nil)
	if cap(s.buf) != bufSize {
		t.Fatalf("buffer of %d bytes after Reset, want %d", cap(s.buf), bufSize)
	}
	first := &s.buf[:1][0]
	s.Reset([]byte("xyz"))
	if &s.buf[0] != first {
		t.Fatal("Reset replaced a standard buffer")
	}
}
