package inflate

import (
	"bytes"
	"testing"
)

// TestGrownBufferGivenBack: a message larger than the buffer grows it for
// itself only: after it the Stream holds the standard buffer again (what a
// busy connection or a pooled Stream keeps), with the history intact, and a
// Reset of a standard buffer reuses it.
func TestGrownBufferGivenBack(t *testing.T) {
	var s Stream
	part := bytes.Repeat([]byte("gateway "), 60<<10/8)
	var msg []byte
	for range 2 { // two stored blocks: more than the standard buffer
		n := len(part)
		msg = append(msg, 0, byte(n), byte(n>>8), ^byte(n), ^byte(n>>8))
		msg = append(msg, part...)
	}
	out, err := s.Message(nil, msg)
	if err != nil {
		t.Fatal(err)
	}
	if cap(s.buf) != bufSize {
		t.Fatalf("buffer of %d bytes after a %d-byte message, want %d", cap(s.buf), len(out), bufSize)
	}
	if !bytes.Equal(s.History(), out[len(out)-windowSize:]) {
		t.Fatal("history after the buffer was given back is not the message's last 32 KiB")
	}
	first := &s.buf[:1][0]
	s.Reset([]byte("xyz"))
	if &s.buf[0] != first {
		t.Fatal("Reset replaced a standard buffer")
	}
}
