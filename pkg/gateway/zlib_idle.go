package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/flate"
)

// An idle zlib-stream connection gives its inflater back. The inflater is
// the largest thing an idle shard holds (a 32 KiB window and about 5 KiB of
// Huffman tables, live for the connection's life); quiet shards, such as an
// interactions-only bot's, hear from Discord once per heartbeat ACK.
//
// It is sound because every zlib-stream message ends with a sync flush: between
// messages the decoder is between blocks, byte-aligned, and all the next
// block can depend on is the last 32 KiB of output (back-references). So a
// released stream keeps only that history, compressed (the snapshot, a few
// KiB), and the next message restores it into a fresh inflater as a preset
// dictionary, from which the decoder continues exactly.
//
// The history is not copied out per message (that would cost every event a
// copy and a busy shard a second 32 KiB buffer): the decoder's own window is
// read out at release time, by feeding it one more deflate block made of
// back-references that copy the window out in order (windowBlock).

// zlibIdleAfter is how long a zlib-stream connection's socket stays quiet
// before its read loop releases the inflater: a few seconds, so that a busy
// shard never pays for a release and a restore, while a shard that hears
// only heartbeat ACKs (every ~41 s) is released most of the time. A var for
// tests.
var zlibIdleAfter = 5 * time.Second

// zlibIdleReleases counts releases, for tests.
var zlibIdleReleases atomic.Int64

// maxWindow is deflate's window: the farthest a back-reference reaches.
const maxWindow = 32 << 10

// inflaters holds the flate decompressors of released and closed streams.
var inflaters sync.Pool

// getInflater returns a decompressor reading r, as if its output had started
// with dict.
func getInflater(r io.Reader, dict []byte) io.ReadCloser {
	if fr, ok := inflaters.Get().(io.ReadCloser); ok {
		_ = fr.(flate.Resetter).Reset(r, dict) // cannot fail: it only resets state
		return fr
	}
	return flate.NewReaderDict(r, dict)
}

// idleReleaser is a transport that can give memory back while its connection
// is quiet. releaseIdle runs on the read loop, between messages; it reports
// false when it could not release yet (a message is half read) and should be
// asked again a tick later (see idleTicks).
type idleReleaser interface {
	releaseIdle() bool
}

// watchIdle lets the socket release c's transport when it has been quiet for
// zlibIdleAfter, if the transport can. Only the read loop may release, as it
// alone decodes. The socket's other reader, the close handshake, starts only
// after fail has recorded a cause, so a hook that finds the connection not
// failed runs on the read loop, which is waiting for data, not decoding; a
// failed connection releases nothing, as it is about to close.
func (c *connection) watchIdle() {
	ir, ok := c.tr.(idleReleaser)
	if !ok || c.sock == nil {
		return
	}
	c.sock.idle = func() bool { return c.failed() || ir.releaseIdle() }
}

// idleWatch is the socket's side of the idle release: a read deadline that
// is never returned to the reader, set once per idleTicks-th of the quiet
// period while data flows, cleared once released. Its fields are used by
// whoever reads the socket (see socket).
type idleWatch struct {
	idle     func() bool // nil: no idle release; see connection.watchIdle
	armed    bool        // a deadline is set
	active   bool        // data came in since it was set
	quiet    int         // deadlines in a row that passed without data
	released bool        // released; arm again once data comes in
}

// idleTicks: the quiet period is watched through this many deadlines in a
// row, so the release comes at most a quarter period after it is due, where
// one deadline per period would leave it up to a whole period late (when the
// last data came just after the deadline was set). A busy socket pays one
// deadline per tick.
const idleTicks = 4

// readConn reads the TCP socket; with an idle hook, it releases the transport
// after zlibIdleAfter without data, then goes on waiting without a deadline.
func (s *socket) readConn(p []byte) (int, error) {
	w := &s.idleWatch
	if w.idle == nil {
		return s.Conn.Read(p)
	}
	if !w.armed && !w.released {
		w.arm(s.Conn)
	}
	for {
		n, err := s.Conn.Read(p)
		if n > 0 || err == nil || !w.armed || !errors.Is(err, os.ErrDeadlineExceeded) {
			if n > 0 {
				w.active, w.released = true, false
			}
			return n, err
		}
		// The deadline is ours, not a dead connection: carry on waiting.
		if w.active {
			w.quiet = 0
		} else {
			w.quiet++
		}
		if w.quiet < idleTicks || !w.idle() {
			w.arm(s.Conn) // not quiet for long enough, or refused: ask again a tick later
			continue
		}
		w.armed, w.quiet, w.released = false, 0, true
		if err := s.Conn.SetReadDeadline(time.Time{}); err != nil {
			return 0, err
		}
	}
}

// arm sets the deadline a tick ahead. A closed socket refuses; its next read
// says so.
func (w *idleWatch) arm(conn interface{ SetReadDeadline(time.Time) error }) {
	w.armed = conn.SetReadDeadline(time.Now().Add(zlibIdleAfter/idleTicks)) == nil
	w.active = false
}

// releaseIdle gives the inflater back, keeping the window as a snapshot.
func (z *zlibStream) releaseIdle() bool {
	if z.pending != nil {
		return false
	}
	if z.fr == nil || z.broken != nil || z.window < minCopy {
		return true // nothing held, or too little history to copy out
	}
	buf := inflatePool.get()
	defer inflatePool.put(buf)
	win, err := z.readWindow(*buf)
	if err != nil {
		// The decoder has consumed the block it was fed: it cannot go on.
		// The next message reports it.
		_ = z.fail(fmt.Errorf("zlib-stream: reading the window out for an idle release: %w", err))
		return true
	}
	*buf = win[:0]
	z.snapshot = compressWindow(win)
	inflaters.Put(z.fr)
	z.fr = nil
	z.carry = nil
	zlibIdleReleases.Add(1)
	return true
}

// readWindow makes the decoder output its window: what the last message left
// unread (the window-wrap edge: the end of its last block and the sync
// marker, no output), then a final block copying the window out.
func (z *zlibStream) readWindow(buf []byte) ([]byte, error) {
	z.src.Reset(windowBlock(slices.Clone(z.carry), z.window))
	out, err := readMessage(z.fr, buf)
	if err != nil {
		return out, err
	}
	if len(out) < z.window {
		return out, fmt.Errorf("%d bytes of window, want %d", len(out), z.window)
	}
	return out[len(out)-z.window:], nil
}

// restore continues a released stream: a fresh inflater, its window the
// snapshot, reading in.
func (z *zlibStream) restore(in []byte) error {
	buf := inflatePool.get()
	defer inflatePool.put(buf)
	z.src.Reset(z.snapshot)
	z.fr = getInflater(&z.src, nil)
	dict, err := readMessage(z.fr, *buf)
	*buf = dict[:0]
	if err == nil && len(dict) != z.window {
		err = fmt.Errorf("%d bytes, want %d", len(dict), z.window)
	}
	if err != nil {
		return fmt.Errorf("zlib-stream: restoring the window of an idle release: %w", err)
	}
	z.src.Reset(in)
	_ = z.fr.(flate.Resetter).Reset(&z.src, dict) // copies dict
	z.snapshot = nil
	return nil
}

// snapshotLevel compresses windows, once per quiet period. Fast: on gateway
// messages (BenchmarkZlibIdleRelease) level 9 made the snapshot 7% smaller
// for ten times the time of a release and restore.
const snapshotLevel = 2

// snapshotter is a pooled flate writer and its output buffer.
type snapshotter struct {
	w   *flate.Writer
	out bytes.Buffer
}

var snapshotters sync.Pool

// compressWindow returns win as a raw deflate stream, one final block.
func compressWindow(win []byte) []byte {
	s, ok := snapshotters.Get().(*snapshotter)
	if ok {
		s.out.Reset()
		s.w.Reset(&s.out)
	} else {
		s = &snapshotter{}
		s.w, _ = flate.NewWriter(&s.out, snapshotLevel) // the level is valid
	}
	_, _ = s.w.Write(win) // a bytes.Buffer takes everything
	_ = s.w.Close()
	snap := bytes.Clone(s.out.Bytes())
	snapshotters.Put(s)
	return snap
}

// Deflate's length and distance codes (RFC 1951 §3.2.5): the smallest value
// of each code and its count of extra bits.
var (
	lengthBase  = [...]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [...]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [...]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [...]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

const (
	minCopy = 3   // the shortest back-reference
	maxCopy = 258 // the longest
)

// windowBlock appends a final fixed-Huffman deflate block that outputs the
// w most recent bytes of history (minCopy ≤ w ≤ maxWindow), oldest first:
// back-references all at distance w, of lengths adding up to w.
func windowBlock(dst []byte, w int) []byte {
	b := bitWriter{out: dst}
	b.bits(1, 1) // BFINAL: the decoder flushes its output and stops
	b.bits(1, 2) // BTYPE 01: fixed Huffman codes
	for left := w; left > 0; {
		n := min(left, maxCopy)
		if rest := left - n; rest > 0 && rest < minCopy {
			n = left - minCopy // leave a copy long enough
		}
		b.copy(n, w)
		left -= n
	}
	b.code(0, 7) // end of block: symbol 256
	return b.flush()
}

// bitWriter packs a deflate bit stream, least significant bit first.
type bitWriter struct {
	out []byte
	acc uint64
	n   uint
}

func (b *bitWriter) bits(v uint64, n uint) {
	b.acc |= v << b.n
	for b.n += n; b.n >= 8; b.n -= 8 {
		b.out = append(b.out, byte(b.acc))
		b.acc >>= 8
	}
}

// code writes a Huffman code, which deflate packs most significant bit first.
func (b *bitWriter) code(c uint64, n uint) {
	var r uint64
	for i := range n {
		r |= (c >> i & 1) << (n - 1 - i)
	}
	b.bits(r, n)
}

// copy writes a back-reference of length n at distance d, in the fixed codes.
func (b *bitWriter) copy(n, d int) {
	i := lastAtMost(lengthBase[:], n)
	if sym := 257 + i; sym < 280 {
		b.code(uint64(sym-256), 7)
	} else {
		b.code(uint64(0xc0+sym-280), 8)
	}
	b.bits(uint64(n-int(lengthBase[i])), uint(lengthExtra[i]))
	j := lastAtMost(distBase[:], d)
	b.code(uint64(j), 5)
	b.bits(uint64(d-int(distBase[j])), uint(distExtra[j]))
}

func (b *bitWriter) flush() []byte {
	if b.n > 0 {
		b.out = append(b.out, byte(b.acc))
	}
	return b.out
}

// lastAtMost returns the index of the last of the ascending bases that is at
// most v.
func lastAtMost(bases []uint16, v int) int {
	i := len(bases) - 1
	for int(bases[i]) > v {
		i--
	}
	return i
}
