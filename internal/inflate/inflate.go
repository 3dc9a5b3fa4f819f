// Package inflate decodes raw DEFLATE (RFC 1951) the way Discord's
// zlib-stream transport uses it: one stream per connection, cut into
// messages that each end at a block boundary (a sync flush), where
// back-references reach into the output of earlier messages.
//
// It exists for speed on that workload: each sync-flushed message starts a
// new (usually dynamic Huffman) block, so building the decoding tables is a
// large part of the work; Stream builds small tables with few stores, and
// decodes into one buffer that holds the history and the new output
// together.
package inflate

import (
	"errors"
	"fmt"
)

const (
	windowSize = 32 << 10 // the farthest a back-reference reaches
	maxMatch   = 258
	// slack is the room the decode loop wants past the output position
	// before a symbol: a whole match, after the two literals it decodes
	// without checking the room. (copyMatch's 16-byte copy of a shorter
	// match, after at most two literals, stays well inside it.)
	slack = maxMatch + 2
	// bufSize is the output buffer a Stream keeps: history plus 16 KiB of
	// room for messages. Once less than slideAt is left after a message, the
	// last windowSize bytes slide to the front: a 32 KiB copy every 8 KiB or
	// more of output costs less than a ring buffer's split copies on every
	// match. A message that needs more room grows the buffer for itself; the
	// slide after it goes back to bufSize. Measured with BenchmarkMessage
	// (docs/benchmarks.md): room 16 KiB decodes as fast as 64 KiB (the
	// first design, a 96 KiB buffer per busy connection), 8 KiB 3-6 % and 4
	// KiB about 10 % slower.
	bufSize = windowSize + 16<<10
	slideAt = 8 << 10
)

// Errors a Message can return, wrapped with detail. Every error leaves the
// Stream unusable until Reset: its history is no longer that of the stream.
var (
	// ErrCorrupt: the input is not valid DEFLATE.
	ErrCorrupt = errors.New("inflate: invalid deflate data")
	// ErrTruncated: the message ends inside a block (the stream may be fine,
	// but a message must end at a block boundary).
	ErrTruncated = errors.New("inflate: message ends inside a block")
	// ErrEnded: input after the stream's final block.
	ErrEnded = errors.New("inflate: data after the final block")
	// ErrTooLarge: the message's output is over the limit.
	ErrTooLarge = errors.New("inflate: message output over the limit")
)

// Stream decodes one DEFLATE stream message by message. The zero Stream is
// ready to decode a stream's first message, with no output limit.
type Stream struct {
	// buf holds the history (the stream's last output, at most windowSize
	// bytes that count) followed by the message being decoded; len(buf) is
	// the end of the output so far.
	buf    []byte
	limit  int // largest output of one message; < 0: none
	hasLim bool
	ended  bool  // the final block has been decoded
	broken error // the error that left the stream unusable

	lit, dist, clen table // the current dynamic block's tables
}

// SetLimit makes Message fail with ErrTooLarge, while decoding, on a message
// whose output is over n bytes; n < 0 removes the limit. The buffer Message
// decodes into then never grows past the history plus n plus a small
// constant, whatever the input claims.
func (s *Stream) SetLimit(n int) {
	s.limit, s.hasLim = n, n >= 0
}

// Message decodes src, one message's deflate data (whole blocks; the zlib
// header of a stream's first message stripped by the caller), appends its
// output to dst and returns the extended slice. Back-references may reach
// the output of earlier messages. After an error the Stream returns the same
// error until Reset.
func (s *Stream) Message(dst, src []byte) ([]byte, error) {
	if s.broken != nil {
		return dst, s.broken
	}
	if len(src) == 0 {
		return dst, nil
	}
	if s.ended {
		return dst, s.fail(ErrEnded)
	}
	start := len(s.buf)
	if err := s.decode(src, start); err != nil {
		return dst, s.fail(err)
	}
	dst = append(dst, s.buf[start:]...)
	s.slide()
	return dst, nil
}

// History returns the stream's last output, at most 32 KiB: what a new
// Stream needs (through Reset) to continue the stream. It is valid until the
// next Message or Reset.
func (s *Stream) History() []byte {
	return s.buf[max(0, len(s.buf)-windowSize):]
}

// Reset starts the Stream over, in the middle of a stream whose output so far
// ends with dict (only the last 32 KiB count; nil: a new stream). The limit
// is kept. dict is copied. The buffer is reused if it has the standard size
// and replaced if a large message grew it, so that a Stream kept for later
// (say in a sync.Pool) after Reset holds no more than the standard buffer.
func (s *Stream) Reset(dict []byte) {
	dict = dict[max(0, len(dict)-windowSize):]
	if cap(s.buf) != bufSize {
		s.buf = make([]byte, 0, bufSize)
	}
	s.buf = append(s.buf[:0], dict...)
	s.ended, s.broken = false, nil
}

func (s *Stream) fail(err error) error {
	s.broken = err
	s.buf = s.buf[:0]
	return err
}

// slide makes room for the next message (see bufSize), and gives back a
// buffer grown for a large message.
func (s *Stream) slide() {
	if cap(s.buf)-len(s.buf) >= slideAt && cap(s.buf) == bufSize {
		return
	}
	hist := s.History()
	if cap(s.buf) != bufSize {
		s.buf = append(make([]byte, 0, bufSize), hist...)
		return
	}
	s.buf = s.buf[:copy(s.buf[:cap(s.buf)], hist)]
}

// corrupt wraps ErrCorrupt with what was wrong.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}
