package inflate_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	stdflate "compress/flate"

	"github.com/shardfleet/shardfleet/internal/inflate"
)

// FuzzMessage splits data into messages (sizes drawn from split) and
// either compresses them with klauspost's writer at level (a sync flush
// after each), which must decode exactly, or decodes data itself as deflate
// data, differentially against compress/flate's reader on the concatenated
// messages: the same output, and an error where it finds one. (klauspost's
// reader is not the reference for invalid data: it accepts some that
// compress/flate rejects, such as FuzzMessage/1551076a9d946ba1.)
func FuzzMessage(f *testing.F) {
	msgs := messageCreates(3)
	comp := compress(f, writerNamed("klauspost1"), msgs)
	f.Add(false, uint8(0), uint16(len(comp[0])), bytes.Join(comp, nil))
	f.Add(true, uint8(3), uint16(300), bytes.Join(msgs, nil))
	f.Add(false, uint8(0), uint16(7), fixedMatch())
	f.Add(false, uint8(0), uint16(1), []byte{0, 3, 0, 0xfc, 0xff, 'a', 'b', 'c', 1, 0, 0, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, compressFirst bool, level uint8, split uint16, data []byte) {
		pieces := splitRandom(data, split)
		if compressFirst {
			w := writers()[1+2*int(level%12)] // klauspost, levels -2 to 9
			decodeAll(t, new(inflate.Stream), compress(t, w, pieces), pieces)
			return
		}
		differential(t, pieces)
	})
}

// splitRandom cuts data into pieces of 0 to 599 bytes, drawn from seed.
func splitRandom(data []byte, seed uint16) [][]byte {
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	var pieces [][]byte
	for len(data) > 0 {
		n := min(rng.IntN(600), len(data))
		pieces = append(pieces, data[:n])
		data = data[n:]
	}
	return pieces
}

// differential decodes the messages until one fails, and checks the
// outcome against klauspost's reader on the same bytes.
func differential(t *testing.T, msgs [][]byte) {
	var s inflate.Stream
	var out []byte
	var err error
	k := 0 // messages decoded
	for ; k < len(msgs); k++ {
		if out, err = s.Message(out, msgs[k]); err != nil {
			break
		}
	}
	// compress/flate on the messages decoded: the same output; an
	// unfinished stream, or one that ended (then the Stream refuses more).
	kout, kerr := stdAll(msgs[:k])
	if !bytes.Equal(kout, out) {
		t.Fatalf("after %d messages: %d bytes, klauspost %d (%v)", k, len(out), len(kout), kerr)
	}
	if kerr != nil && !errors.Is(kerr, io.ErrUnexpectedEOF) {
		t.Fatalf("after %d messages decoded: compress/flate %v", k, kerr)
	}
	if err == nil {
		return
	}
	// The failing message included.
	kout, kerr = stdAll(msgs[:k+1])
	switch {
	case errors.Is(err, inflate.ErrEnded):
		if kerr != nil && !bytes.Equal(kout, out) {
			t.Fatalf("message %d: %v; compress/flate %v", k, err, kerr)
		}
	case errors.Is(err, inflate.ErrCorrupt):
		if errors.Is(kerr, io.ErrUnexpectedEOF) {
			// At the input's end the Stream reads missing bits as zeros
			// and may find an invalid code in them, where compress/flate
			// wants more input first: given those zeros, it must agree.
			_, kerr = stdAll(append(msgs[:k+1:k+1], make([]byte, 64)))
		}
		var corrupt stdflate.CorruptInputError
		if !errors.As(kerr, &corrupt) {
			t.Fatalf("message %d: %v; compress/flate %v", k, err, kerr)
		}
	case errors.Is(err, inflate.ErrTruncated):
		// (That a message ending at a block boundary is never taken for a
		// truncated one is the other mode's check: it only makes those.)
		if !errors.Is(kerr, io.ErrUnexpectedEOF) {
			t.Fatalf("message %d: %v; compress/flate %v", k, err, kerr)
		}
	default:
		t.Fatalf("message %d: unexpected error %v", k, err)
	}
}

func stdAll(msgs [][]byte) ([]byte, error) {
	out, err := io.ReadAll(stdflate.NewReader(bytes.NewReader(bytes.Join(msgs, nil))))
	if out == nil {
		out = []byte{}
	}
	return out, err
}
