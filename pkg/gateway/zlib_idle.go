package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/shardfleet/shardfleet/internal/inflate"
)

// An idle zlib-stream connection gives its decoder back. The decoder is
// the largest thing an idle shard holds (internal/inflate's Stream: a 48 KiB
// buffer of history and output, and its Huffman tables); quiet shards, such
// as an interactions-only bot's, hear from Discord once per heartbeat ACK.
//
// It is sound because every zlib-stream message ends with a sync flush: between
// messages the decoder is between blocks, byte-aligned, and all the next
// block can depend on is the last 32 KiB of output (back-references). So a
// released stream keeps only that history, compressed (the snapshot, a few
// KiB), and the next message restores it into a pooled decoder, from which
// the decoder continues exactly.

// zlibIdleAfter is how long a zlib-stream connection's socket stays quiet
// before its read loop releases the decoder: a few seconds, so that a busy
// shard never pays for a release and a restore, while a shard that hears
// only heartbeat ACKs (every ~41 s) is released most of the time. A release
// and restore still costs a few hundred µs (BenchmarkZlibIdleRelease, nearly
// all of it compressing the snapshot; docs/benchmarks.md, issue 16 third
// round), some hundred messages' worth of decoding: a shorter quiet period
// would make a shard that hears a message every second or two pay it on
// most messages, for little memory (such a shard is hardly idle). A var for
// tests.
var zlibIdleAfter = 5 * time.Second

// zlibIdleReleases counts releases, for tests.
var zlibIdleReleases atomic.Int64

// streams holds the decoders of released and closed streams, each with a
// buffer of the standard size (see putStream).
var streams sync.Pool

// getStream returns a decoder for a new stream (pooled ones were reset by
// putStream), refusing messages over limit (-1: none).
func getStream(limit int64) *inflate.Stream {
	s, ok := streams.Get().(*inflate.Stream)
	if !ok {
		s = new(inflate.Stream)
	}
	s.SetLimit(streamLimit(limit))
	return s
}

// streamLimit is the connection's read limit (-1: none) as a Stream's.
func streamLimit(limit int64) int {
	return int(min(limit, math.MaxInt32))
}

// putStream pools s (nil: nothing), its history dropped and a buffer grown
// for a large message given back, so a pooled decoder holds 48 KiB at most.
func putStream(s *inflate.Stream) {
	if s == nil {
		return
	}
	s.Reset(nil)
	streams.Put(s)
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
	// woke: data came in after a release (see wake), so one quiet tick
	// releases again; quickAt is when such a quick release last came.
	woke    bool
	quickAt time.Time
}

// wake notes data coming in. A lone message after a release (on a quiet
// shard, the heartbeat ACK every ~41 s) is released again a tick after it,
// not a whole quiet period: that would hold the decoder an eighth of the
// time for nothing. The release and restore cost the same either way, once
// per message. Data within a quiet period of the last quick release, or a
// second read within the tick, means the shard is talking again: the whole
// period is waited, as for a busy shard.
func (w *idleWatch) wake() {
	if w.released {
		w.woke = time.Since(w.quickAt) >= zlibIdleAfter
	}
	w.active, w.released = true, false
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
				w.wake()
			}
			return n, err
		}
		// The deadline is ours, not a dead connection: carry on waiting.
		if w.active {
			w.quiet, w.woke = 0, false
		} else {
			w.quiet++
		}
		need := idleTicks
		if w.woke {
			need = 1
		}
		if w.quiet < need || !w.idle() {
			w.arm(s.Conn) // not quiet for long enough, or refused: ask again a tick later
			continue
		}
		if w.woke {
			w.quickAt = time.Now()
		}
		w.armed, w.quiet, w.released, w.woke = false, 0, true, false
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

// releaseIdle gives the decoder back, keeping its history as a snapshot.
func (z *zlibStream) releaseIdle() bool {
	if z.pending != nil {
		return false
	}
	if z.inf == nil || z.broken != nil {
		return true // nothing held
	}
	hist := z.inf.History()
	z.snapshot, z.window = compressWindow(z.spare[:0], hist), len(hist)
	z.spare = nil
	putStream(z.inf)
	z.inf = nil
	zlibIdleReleases.Add(1)
	return true
}

// restore continues a released stream: a pooled decoder decodes the
// snapshot, which leaves the history in it.
func (z *zlibStream) restore() error {
	buf := inflatePool.get()
	defer inflatePool.put(buf)
	inf := getStream(-1) // the history may be larger than the message limit
	hist, err := inf.Message(*buf, z.snapshot)
	*buf = hist[:0]
	if err == nil && len(hist) != z.window {
		err = fmt.Errorf("%d bytes, want %d", len(hist), z.window)
	}
	if err != nil {
		putStream(inf)
		return fmt.Errorf("zlib-stream: restoring the history of an idle release: %w", err)
	}
	inf.SetLimit(streamLimit(z.limit))
	z.inf = inf
	z.snapshot, z.spare = nil, z.snapshot[:0]
	return nil
}

// snapshotLevel compresses windows, once per quiet period. Flate level 2:
// on a window of gateway messages (BenchmarkSnapshotCodec) level 1 is no
// faster and a little larger, and s2 takes about half the time but keeps a
// third more bytes per idle shard, which is what the release is for.
const snapshotLevel = 2

// snapshotter is a pooled flate writer and its output buffer.
type snapshotter struct {
	w   *flate.Writer
	out bytes.Buffer
}

var snapshotters sync.Pool

// compressWindow appends win to dst as raw deflate data ending in a sync
// flush, as a zlib-stream message does.
func compressWindow(dst, win []byte) []byte {
	s, ok := snapshotters.Get().(*snapshotter)
	if !ok {
		s = &snapshotter{}
		s.w, _ = flate.NewWriter(&s.out, snapshotLevel) // the level is valid
	}
	s.out.Reset()
	s.w.Reset(&s.out)
	_, _ = s.w.Write(win) // a bytes.Buffer takes everything
	_ = s.w.Flush()       // a sync flush, not a final block: the decoder goes on after it
	snap := append(dst, s.out.Bytes()...)
	snapshotters.Put(s)
	return snap
}
