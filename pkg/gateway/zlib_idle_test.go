package gateway

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// farReferences returns n gateway messages whose bodies repeat parts of
// earlier messages, up to the whole 32 KiB window back, with some larger than
// the window: a decoder restored with the wrong history would show it.
func farReferences(n int, rng *rand.Rand) [][]byte {
	msgs := testMessages(n, rng)
	for i := 3; i < n; i++ {
		src := msgs[rng.IntN(i)]
		from := rng.IntN(len(src))
		piece := src[from:min(len(src), from+200+rng.IntN(2000))]
		msgs[i] = fmt.Appendf(nil, `{"op":0,"s":%d,"t":"MESSAGE_CREATE","d":{"quote":%q,"more":%s}}`, i+1, piece, msgs[i])
	}
	return msgs
}

// TestZlibStreamIdleReleaseMatchesPlain: a stream released between messages
// (every one, or at random) decodes to the same bytes as one never released,
// split messages included; a release is refused while a message is half
// read, and a released stream holds no inflater, only a snapshot smaller
// than the window.
func TestZlibStreamIdleReleaseMatchesPlain(t *testing.T) {
	for _, split := range []int{1, 3} {
		for _, every := range []bool{true, false} {
			t.Run(fmt.Sprintf("split%d/every%v", split, every), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(12, uint64(split)))
				msgs := farReferences(60, rng)
				frames := zlibFrames(t, msgs, split, rng)
				plain := &zlibStream{limit: -1}
				defer plain.close()
				want := decodeAll(t, plain, frames, func(int) {}, func(int) {})
				z := &zlibStream{limit: -1}
				defer z.close()
				released := 0
				got := decodeAll(t, z, frames, func(i int) {
					if !every && rng.IntN(3) > 0 {
						return
					}
					if !z.releaseIdle() {
						t.Fatalf("after message %d: release refused between messages", i)
					}
					if z.inf != nil || z.snapshot == nil || len(z.snapshot) >= z.window {
						t.Fatalf("after message %d: inflater %v, snapshot of %d bytes for a %d-byte window", i, z.inf != nil, len(z.snapshot), z.window)
					}
					released++
				}, func(i int) {
					if z.releaseIdle() {
						t.Fatalf("message %d: released while half read", i)
					}
				})
				for i := range want {
					if !bytes.Equal(got[i], want[i]) || !bytes.Equal(got[i], msgs[i]) {
						t.Fatalf("message %d differs after releases: got %d bytes, plain decode %d", i, len(got[i]), len(want[i]))
					}
				}
				if released < 10 {
					t.Fatalf("only %d releases", released)
				}
			})
		}
	}
}

// TestZlibStreamIdleReleaseReusesTheSnapshot: a quiet shard releases after
// each heartbeat ACK; once its window is full, the next release compresses
// into the last snapshot's array (when it fits) instead of a new one, and
// the stream still decodes exactly.
func TestZlibStreamIdleReleaseReusesTheSnapshot(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 5))
	msgs := farReferences(60, rng)
	const acks = 30
	for range acks {
		msgs = append(msgs, []byte(`{"t":null,"s":null,"op":11,"d":null}`))
	}
	frames := zlibFrames(t, msgs, 1, rng)
	z := &zlibStream{limit: -1}
	defer z.close()
	var prev *byte
	reused := 0
	got := decodeAll(t, z, frames, func(i int) {
		if i < len(msgs)-acks-1 {
			return
		}
		if !z.releaseIdle() {
			t.Fatalf("after message %d: release refused", i)
		}
		if unsafe.SliceData(z.snapshot) == prev {
			reused++
		}
		prev = unsafe.SliceData(z.snapshot)
	}, func(int) {})
	for i := range msgs {
		if !bytes.Equal(got[i], msgs[i]) {
			t.Fatalf("message %d differs after releases", i)
		}
	}
	if reused < acks/2 {
		t.Fatalf("%d of %d releases reused the last snapshot's array", reused, acks)
	}
	t.Logf("%d of %d releases reused the last snapshot's array", reused, acks)
}

// TestZlibStreamIdleReleaseAtWindowWrap: a release right after a message whose
// output ends exactly at a 32 KiB boundary, or is larger than the window,
// keeps the right history, and the stream goes on exactly. (klauspost flate
// stopped short at that edge; internal/inflate has no such edge, and this
// stays as a regression test of the history a release keeps.)
func TestZlibStreamIdleReleaseAtWindowWrap(t *testing.T) {
	for _, sizes := range [][]int{{32 << 10, 100, 200}, {10000, 32<<10 - 10000, 300, 64 << 10, 50}} {
		var msgs [][]byte
		for i, n := range sizes {
			msgs = append(msgs, jsonOfSize(n, byte('a'+i)))
		}
		frames := zlibFrames(t, msgs, 1, rand.New(rand.NewPCG(5, 5)))
		z := &zlibStream{limit: -1}
		got := decodeAll(t, z, frames, func(i int) {
			if !z.releaseIdle() || z.inf != nil {
				t.Fatalf("sizes %v, after message %d: not released", sizes, i)
			}
		}, func(int) {})
		z.close()
		for i := range msgs {
			if !bytes.Equal(got[i], msgs[i]) {
				t.Fatalf("sizes %v, message %d: got %d bytes, want %d", sizes, i, len(got[i]), len(msgs[i]))
			}
		}
	}
}

// TestZlibStreamIdleReleaseEarly: a stream that never started has nothing to
// release; one with a few bytes of history releases and restores them.
func TestZlibStreamIdleReleaseEarly(t *testing.T) {
	z := &zlibStream{limit: -1}
	if !z.releaseIdle() || z.snapshot != nil {
		t.Fatal("a stream not started released something")
	}
	frames := zlibFrames(t, [][]byte{[]byte("{}"), []byte(`{"op":11}`)}, 1, rand.New(rand.NewPCG(1, 1)))
	got := decodeAll(t, z, frames[:1], func(int) {
		if !z.releaseIdle() || z.inf != nil || z.snapshot == nil {
			t.Fatal("2 bytes of history not released")
		}
	}, func(int) {})
	got = append(got, decodeAll(t, z, frames[1:], func(int) {
		if !z.releaseIdle() || z.inf != nil {
			t.Fatal("not released")
		}
	}, func(int) {})...)
	z.close()
	if string(got[0]) != "{}" || string(got[1]) != `{"op":11}` {
		t.Fatalf("got %q", got)
	}
}

// BenchmarkZlibIdleRelease: one release and restore of a full window of
// gateway messages, and the snapshot a released stream keeps (snapshot-B).
func BenchmarkZlibIdleRelease(b *testing.B) {
	rng := rand.New(rand.NewPCG(13, 13))
	msgs := farReferences(40, rng)
	frames := zlibFrames(b, msgs, 1, rng)
	z := &zlibStream{limit: -1}
	defer z.close()
	for _, f := range frames[:len(frames)-1] {
		if _, err := z.decode(true, f[0]); err != nil {
			b.Fatal(err)
		}
		z.release()
	}
	last := frames[len(frames)-1][0]
	var snapshot int
	b.ReportAllocs()
	for b.Loop() {
		if !z.releaseIdle() {
			b.Fatal("refused")
		}
		snapshot = len(z.snapshot)
		if err := z.restore(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(snapshot), "snapshot-B")
	if got, err := z.decode(true, last); err != nil || !bytes.Equal(got, msgs[len(msgs)-1]) {
		b.Fatalf("after the releases: %v", err)
	}
}

// TestSocketIdleRelease: over a real TCP pair, a read that waits out the
// quiet period asks the transport to release (again a tick later when it
// refuses), never returns the deadline, stops asking once released, gets the
// data that comes after, and watches the next quiet period afresh.
func TestSocketIdleRelease(t *testing.T) {
	SetZlibIdleAfter(t, 20*time.Millisecond)
	client, server := tcpPair(t)
	asked := make(chan bool, 10)
	refuse := 1
	s := &socket{Conn: client}
	s.idle = func() bool {
		ok := refuse == 0
		refuse--
		asked <- ok
		return ok
	}
	read := func() chan string {
		got := make(chan string, 1)
		go func() {
			p := make([]byte, 16)
			n, err := s.Read(p)
			if err != nil {
				got <- "error: " + err.Error()
				return
			}
			got <- string(p[:n])
		}()
		return got
	}
	for _, msg := range []string{"after", "again"} {
		refuse = 1
		got := read()
		if <-asked || !<-asked {
			t.Fatal("want a refused release, then one done")
		}
		if _, err := server.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if g := <-got; g != msg {
			t.Fatalf("read %q, want %q", g, msg)
		}
		if len(asked) > 0 || s.armed {
			t.Fatalf("asked %d more times, deadline set %v, after the release", len(asked), s.armed)
		}
	}
}

// deadlineCounter counts the read deadlines set on a Conn (not their
// clearing).
type deadlineCounter struct {
	net.Conn
	set atomic.Int32
}

func (c *deadlineCounter) SetReadDeadline(t time.Time) error {
	if !t.IsZero() {
		c.set.Add(1)
	}
	return c.Conn.SetReadDeadline(t)
}

// TestSocketIdleReleaseQuickAfterWake: a lone message after a release (a
// quiet shard's heartbeat ACK) is released again one tick after it, not a
// whole quiet period (idleTicks ticks); data soon after such a quick release
// means the shard talks again, and the whole period applies.
func TestSocketIdleReleaseQuickAfterWake(t *testing.T) {
	SetZlibIdleAfter(t, 20*time.Millisecond)
	client, server := tcpPair(t)
	conn := &deadlineCounter{Conn: client}
	released := make(chan struct{}, 1)
	var onRelease func() // runs on the reading goroutine
	s := &socket{Conn: conn}
	s.idle = func() bool {
		if onRelease != nil {
			onRelease()
		}
		released <- struct{}{}
		return true
	}
	p := make([]byte, 16)
	// readUntilRelease reads until the watch releases (the read then waits
	// without a deadline), sends next for it, and returns how many deadlines
	// the release took.
	readUntilRelease := func(next string) int32 {
		t.Helper()
		before := conn.set.Load()
		done := make(chan error, 1)
		go func() {
			n, err := s.Read(p)
			if err == nil && string(p[:n]) != next {
				err = fmt.Errorf("read %q, want %q", p[:n], next)
			}
			done <- err
		}()
		<-released
		ticks := conn.set.Load() - before
		if _, err := server.Write([]byte(next)); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return ticks
	}
	if n := readUntilRelease("ack"); n != idleTicks {
		t.Fatalf("first release after %d ticks, want the whole period, %d", n, idleTicks)
	}
	if !s.woke {
		t.Fatal("a message after a full quiet period did not count as a lone wake")
	}
	// The quick release makes the quiet period long, so that the data sent
	// after it comes within a period however slow this machine is.
	onRelease = func() { zlibIdleAfter = time.Hour }
	if n := readUntilRelease("talk"); n != 1 {
		t.Fatalf("release after a lone message took %d ticks, want 1", n)
	}
	if s.woke {
		t.Fatal("data soon after a quick release counted as a lone wake: the shard talks again")
	}
}
