package inflate

import (
	"encoding/binary"
	"fmt"
)

const (
	maxLit  = 286 // literal/length codes a dynamic block may declare
	maxDist = 30  // distance codes a dynamic block may declare
)

// clenOrder is the order of the code-length code lengths in a dynamic block
// header (RFC 1951 3.2.7).
var clenOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// The fixed Huffman code's tables (RFC 1951 3.2.6).
var fixedLit, fixedDist = fixedTables()

func fixedTables() (lit, dist table) {
	var lens [288]uint8
	for i := range lens {
		switch {
		case i < 144:
			lens[i] = 8
		case i < 256:
			lens[i] = 9
		case i < 280:
			lens[i] = 7
		default:
			lens[i] = 8
		}
	}
	var syms [288]uint16
	lit.primary = make([]uint32, 1<<litBits)
	count, n := countLengths(lens[:], syms[:])
	build(&lit, syms[:n], lens[:], &count, litTemplate[:], litBits)
	for i := range 32 {
		lens[i] = 5
	}
	dist.primary = make([]uint32, 1<<distBits)
	count, n = countLengths(lens[:32], syms[:])
	build(&dist, syms[:n], lens[:32], &count, distTemplate[:], distBits)
	return lit, dist
}

// bitReader reads a message's bits, least significant first. Bits of b
// above nb may hold the next input bytes already (the fast refill loads 8
// bytes and counts only whole ones), which is harmless: they are the same
// bits a later load ORs in.
type bitReader struct {
	in []byte
	ip int    // the next byte of in to count into nb
	b  uint64 // loaded bits, the next one lowest
	nb uint   // how many bits of b are loaded and not consumed
}

// need loads bits until n are available; false if the input ends first.
func (r *bitReader) need(n uint) bool {
	for r.nb < n {
		if r.ip == len(r.in) {
			return false
		}
		r.b |= uint64(r.in[r.ip]) << r.nb
		r.ip++
		r.nb += 8
	}
	return true
}

// take consumes n bits, which need has made available.
func (r *bitReader) take(n uint) uint32 {
	v := uint32(r.b & (1<<n - 1))
	r.b >>= n
	r.nb -= n
	return v
}

// bitsLeft is how many bits of input are not consumed.
func (r *bitReader) bitsLeft() int {
	return int(r.nb) + 8*(len(r.in)-r.ip)
}

// align drops the bits up to the next byte boundary and gives the whole
// bytes left in b back to the input, for a stored block to read in.
func (r *bitReader) align() {
	r.ip -= int(r.nb >> 3)
	r.b, r.nb = 0, 0
}

// decode decodes src's blocks into s.buf, whose output of this message
// starts at start.
func (s *Stream) decode(src []byte, start int) error {
	r := bitReader{in: src}
	for {
		left := r.bitsLeft()
		switch {
		case s.ended && left >= 8:
			return ErrEnded
		case s.ended || left == 0:
			return s.checkLimit(len(s.buf), start)
		case left < 3:
			return ErrTruncated
		}
		r.need(3)
		hdr := r.take(3)
		s.ended = hdr&1 == 1
		var err error
		switch hdr >> 1 {
		case 0:
			err = s.stored(&r, start)
		case 1:
			err = s.huffman(&r, &fixedLit, &fixedDist, start)
		case 2:
			if err = s.readDynamic(&r); err == nil {
				err = s.huffman(&r, &s.lit, &s.dist, start)
			}
		default:
			err = corrupt("reserved block type 3")
		}
		if err != nil {
			return err
		}
	}
}

func (s *Stream) checkLimit(op, start int) error {
	if s.hasLim && op-start > s.limit {
		return fmt.Errorf("%w (%d bytes)", ErrTooLarge, s.limit)
	}
	return nil
}

// stored copies a stored block (RFC 1951 3.2.4).
func (s *Stream) stored(r *bitReader, start int) error {
	r.align()
	in := r.in[r.ip:]
	if len(in) < 4 {
		return ErrTruncated
	}
	n := int(binary.LittleEndian.Uint16(in))
	if uint16(n) != ^binary.LittleEndian.Uint16(in[2:]) {
		return corrupt("stored block length %#04x does not match its complement", n)
	}
	in = in[4:]
	if len(in) < n {
		return ErrTruncated
	}
	op := len(s.buf)
	if err := s.checkLimit(op+n, start); err != nil {
		return err
	}
	out := s.buf[:cap(s.buf)]
	if len(out)-op < n+slack {
		var err error
		if out, err = s.grow(out, op, start, n+slack); err != nil {
			return err
		}
	}
	s.buf = out[:op+copy(out[op:], in[:n])]
	r.ip += 4 + n
	return nil
}

// grow returns out (holding op bytes of output) with at least room bytes
// free after op, or ErrTooLarge if the message's output already is over the
// limit. It never grows out past what a message of limit bytes needs.
func (s *Stream) grow(out []byte, op, start, room int) ([]byte, error) {
	if err := s.checkLimit(op, start); err != nil {
		return out, err
	}
	size := max(2*len(out), bufSize)
	if s.hasLim {
		size = min(size, start+s.limit+slack)
	}
	size = max(size, op+room)
	grown := make([]byte, size)
	copy(grown, out[:op])
	return grown, nil
}

// readDynamic reads a dynamic block's header (RFC 1951 3.2.7) and builds
// its tables into s.lit and s.dist. (Keeping the tables when a block repeats
// the previous block's code lengths was measured twice and dropped: in none
// of six 10,000-message streams, cmd/gatewaybench's among them, did two
// dynamic blocks repeat them: docs/benchmarks.md, fourth round.)
func (s *Stream) readDynamic(r *bitReader) error {
	if !r.need(14) {
		return ErrTruncated
	}
	nlit := int(r.take(5)) + 257
	ndist := int(r.take(5)) + 1
	nclen := int(r.take(4)) + 4
	if nlit > maxLit || ndist > maxDist {
		return corrupt("dynamic block with %d literal/length and %d distance codes", nlit, ndist)
	}
	var clens [19]uint8
	for _, sym := range clenOrder[:nclen] {
		if !r.need(3) {
			return ErrTruncated
		}
		clens[sym] = uint8(r.take(3))
	}
	var syms [maxLit + maxDist]uint16
	count, n := countLengths(clens[:], syms[:])
	if s.clen.primary == nil {
		s.clen.primary = make([]uint32, 1<<clenBits)
	}
	if !build(&s.clen, syms[:n], clens[:], &count, clenTemplate[:], clenBits) {
		return corrupt("invalid code-length code")
	}
	var lens [maxLit + maxDist]uint8
	litCount, n, err := s.readLengths(r, lens[:nlit+ndist], syms[:])
	if err != nil {
		return err
	}
	// The symbols of both codes are listed together, in order: those from
	// nlit on are the distance code's. Their lengths are counted again, and
	// taken from the count of both: a repeat may cross from one code into
	// the other.
	split := n
	for split > 0 && int(syms[split-1]) >= nlit {
		split--
	}
	var distCount [maxCodeLen + 1]uint16
	for j := split; j < n; j++ {
		syms[j] -= uint16(nlit)
		distCount[lens[nlit+int(syms[j])]&15]++
	}
	for l := range litCount {
		litCount[l] -= distCount[l]
	}
	if s.lit.primary == nil {
		s.lit.primary = make([]uint32, 1<<litBits)
		s.dist.primary = make([]uint32, 1<<distBits)
	}
	if !build(&s.lit, syms[:split], lens[:nlit], &litCount, litTemplate[:], litBits) {
		return corrupt("invalid literal/length code")
	}
	if !build(&s.dist, syms[split:n], lens[nlit:nlit+ndist], &distCount, distTemplate[:], distBits) {
		return corrupt("invalid distance code")
	}
	return nil
}

// readLengths decodes the literal/length and distance code lengths with the
// code-length code in s.clen into lens, which must be zeroed (runs of zeros
// are skipped, not written), counts them by length (count[0], which build
// does not read, counts only some of the zeros), and lists the symbols of
// nonzero length in order in syms (n of them), for build. The bit buffer is
// kept in locals, as in huffman.
func (s *Stream) readLengths(r *bitReader, lens []uint8, syms []uint16) (count [maxCodeLen + 1]uint16, n int, err error) {
	syms = syms[:len(lens)] // n <= i < len(lens) at every store
	in, ip, b, nb := r.in, r.ip, r.b, r.nb
	clen, mask := (*[1 << clenBits]uint32)(s.clen.primary), uint64(s.clen.mask&(1<<clenBits-1))
	for i := 0; i < len(lens); {
		if nb < 7+7 { // a code and its repeat bits, or as many as there are
			ip, b, nb = refill(in, ip, b, nb)
		}
		e := clen[b&mask]
		if e&entryInvalid != 0 {
			return count, n, corrupt("invalid code-length code")
		}
		used := uint(e & 0xff)
		if used > nb {
			return count, n, ErrTruncated
		}
		b >>= used & 63
		nb -= used
		sym := uint8(e >> 16)
		if sym < 16 {
			lens[i] = sym
			count[sym&15]++
			// Listed always, kept only if nonzero: (sym+15)>>4 is 1 for
			// lengths 1-15 and 0 for 0, with no branch to mispredict.
			syms[n] = uint16(i)
			n += int((sym + 15) >> 4)
			i++
			continue
		}
		rep, extra := 3, uint(2)
		switch sym {
		case 16: // the previous length, 3-6 times
			if i == 0 {
				return count, n, corrupt("code length repeated before the first")
			}
		case 17: // zeros, 3-10 times
			extra = 3
		case 18: // zeros, 11-138 times
			rep, extra = 11, 7
		}
		if nb < extra {
			return count, n, ErrTruncated
		}
		rep += int(b & (1<<extra - 1))
		b >>= extra & 63
		nb -= extra
		if i+rep > len(lens) {
			return count, n, corrupt("code lengths repeated past their count")
		}
		if sym != 16 {
			i += rep
			continue
		}
		val := lens[i-1]
		count[val&15] += uint16(rep)
		for ; rep > 0; rep-- {
			lens[i] = val
			if val != 0 {
				syms[n] = uint16(i)
				n++
			}
			i++
		}
	}
	r.ip, r.b, r.nb = ip, b, nb
	return count, n, nil
}

// huffman decodes a Huffman-coded block's data with the tables lt and dt
// (RFC 1951 3.2.5) up to its end-of-block code.
func (s *Stream) huffman(r *bitReader, lt, dt *table, start int) error {
	in, ip, b, nb := r.in, r.ip, r.b, r.nb
	out, op := s.buf[:cap(s.buf)], len(s.buf)
	// The masks, cut to the arrays' sizes, index them without bounds checks.
	lp, lmask := (*[1 << litBits]uint32)(lt.primary), uint64(lt.mask&(1<<litBits-1))
	dp, dmask := (*[1 << distBits]uint32)(dt.primary), uint64(dt.mask&(1<<distBits-1))
	var err error
	for {
		if len(out)-op < slack {
			if out, err = s.grow(out, op, start, slack); err != nil {
				break
			}
		}
		ip, b, nb = refill(in, ip, b, nb)
		e := lp[b&lmask]
		// Up to two literals without a refill or a room check: 56 bits
		// hold three codes, and slack counts them. (Unrolled: as a loop,
		// its counter lived on the stack.)
		if e&entryLiteral != 0 && uint(e&0xff) <= nb {
			b >>= e & 0xff & 63
			nb -= uint(e & 0xff)
			out[op] = byte(e >> 16)
			op++
			e = lp[b&lmask]
			if e&entryLiteral != 0 && uint(e&0xff) <= nb {
				b >>= e & 0xff & 63
				nb -= uint(e & 0xff)
				out[op] = byte(e >> 16)
				op++
				e = lp[b&lmask]
			}
		}
		if e&entrySub != 0 {
			e = lt.sub[e>>16+uint32(b>>litBits)&(1<<(e>>8&15)-1)]
		}
		total := uint(e & 0xff)
		if total > nb || e&(entryEnd|entryInvalid) != 0 {
			if err = endOrError(e, nb); err == nil {
				b >>= total & 63
				nb -= total
			}
			break
		}
		if e&entryLiteral != 0 {
			out[op] = byte(e >> 16)
			op++
			b >>= total & 63
			nb -= total
			continue
		}
		length := int(e>>16) + int((b&(1<<(total&63)-1))>>(e>>8&15))
		b >>= total & 63
		nb -= total
		if nb < 28 { // a distance code and its extra bits
			ip, b, nb = refill(in, ip, b, nb)
		}

		e = dp[b&dmask]
		if e&entrySub != 0 {
			e = dt.sub[e>>16+uint32(b>>distBits)&(1<<(e>>8&15)-1)]
		}
		total = uint(e & 0xff)
		if total > nb || e&entryInvalid != 0 {
			err = endOrError(e, nb)
			break
		}
		dist := int(e>>16) + int((b&(1<<(total&63)-1))>>(e>>8&15))
		b >>= total & 63
		nb -= total
		if dist > op {
			err = corrupt("distance %d reaches before the stream's history (%d bytes)", dist, op)
			break
		}
		copyMatch(out, op, dist, length)
		op += length
	}
	r.ip, r.b, r.nb = ip, b, nb
	s.buf = out[:op]
	return err
}

// refill loads input into the bit buffer b (nb bits) until it holds at
// least 56 bits, or all the input: 8 bytes at once while 8 are left.
func refill(in []byte, ip int, b uint64, nb uint) (int, uint64, uint) {
	if ip+8 <= len(in) {
		b |= binary.LittleEndian.Uint64(in[ip:ip+8]) << (nb & 63)
		return ip + int((63-nb)>>3), b, nb | 56
	}
	for nb <= 56 && ip < len(in) {
		b |= uint64(in[ip]) << nb
		ip++
		nb += 8
	}
	return ip, b, nb
}

// endOrError tells, for an entry the decode loop does not handle inline,
// whether it is a block's end (nil) or an error.
func endOrError(e uint32, nb uint) error {
	switch {
	case e&entryInvalid != 0:
		return corrupt("invalid Huffman code")
	case uint(e&0xff) > nb:
		return ErrTruncated
	}
	return nil
}

// copyMatch copies length bytes from dist bytes back to out[op:]; the
// source and the destination overlap when dist < length (a repeat). A match
// of 16 bytes or less may be copied with bytes after it, up to 16 (slack
// has room for them): they are past the output, which overwrites them
// before anything reads them.
func copyMatch(out []byte, op, dist, length int) {
	from := op - dist
	if length <= 16 && dist >= 16 {
		// Cheaper than copy's call for a short match, the most common:
		// one load and one store, of 16 bytes that do not overlap.
		*(*[16]byte)(out[op:]) = *(*[16]byte)(out[from:])
		return
	}
	if dist >= length {
		copy(out[op:op+length], out[from:from+length])
		return
	}
	for n := 0; n < length; {
		n += copy(out[op+n:op+length], out[from:op+n])
	}
}
