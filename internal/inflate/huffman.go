package inflate

import (
	"math/bits"
)

// A table entry is one uint32, laid out so that the decode loop needs few
// operations per symbol:
//
//	bits 0-7   bits to consume: the code's length plus its extra bits
//	bits 8-11  the code's length (in a subtable pointer: the subtable's width)
//	bits 12-15 flags (entryLiteral, entryEnd, entrySub, entryInvalid; none: a length or distance)
//	bits 16-31 value: the literal, the length or distance base, the code-length symbol,
//	           or a subtable's offset
//
// With the length in bits 8-11, a length or distance is
// value + (bitbuf & (1<<total - 1)) >> length.
const (
	entryLiteral uint32 = 1 << 12
	entryEnd     uint32 = 1 << 13 // end of block
	entrySub     uint32 = 1 << 14 // a pointer to a subtable
	entryInvalid uint32 = 1 << 15 // a code no valid stream uses
)

// Primary table widths. Codes longer than the primary width are resolved
// through subtables. For litBits, 9, 10 and 11 measured the same once tables
// were built by doubling (docs/benchmarks.md, issue 16 third round), and 9
// and 10 again once a table is filled only to its width (fourth round): they
// differ only for blocks with codes of 10 bits or more, which no
// MESSAGE_CREATE block of the benchmark's streams has.
const (
	litBits    = 10
	distBits   = 8
	clenBits   = 7 // code-length codes are at most 7 bits long: never a subtable
	maxCodeLen = 15
)

// table is one Huffman code's lookup table: a primary table indexed by the
// next bits of the input, and subtables for codes longer than primaryBits.
// The primary table has 1<<primaryBits entries, of which only the first
// 1<<width, width = min(longest code, primaryBits), are filled and looked up
// (mask): the short codes of a small sync-flushed block (literal/length codes
// of 6-7 bits, distance codes of 4-5 on MESSAGE_CREATE streams) fill 32 to 128
// entries instead of being copied up to 1024.
type table struct {
	primary []uint32
	mask    uint32 // 1<<width - 1
	sub     []uint32
}

// Templates per symbol: the entry without the code length, which build adds.
var (
	litTemplate  = litTemplates()
	distTemplate = distTemplates()
	clenTemplate = clenTemplates()
)

// litTemplates: literals, end of block, and the lengths of RFC 1951 3.2.5:
// 3-10 take no extra bits, then every four codes one more; 285 is 258 with
// none. 286 and 287 appear in the fixed code only and are invalid.
func litTemplates() (t [288]uint32) {
	for sym := range 256 {
		t[sym] = entryLiteral | uint32(sym)<<16
	}
	t[256] = entryEnd
	base, extra := uint32(3), uint32(0)
	for sym := 257; sym < 285; sym++ {
		if sym >= 265 {
			extra = uint32(sym-261) / 4
		}
		t[sym] = base<<16 | extra
		base += 1 << extra
	}
	t[285] = 258 << 16
	t[286], t[287] = entryInvalid, entryInvalid
	return t
}

// distTemplates: distances 1-4 take no extra bits, then every two codes
// one more; 30 and 31 appear in the fixed code only and are invalid.
func distTemplates() (t [32]uint32) {
	base := uint32(1)
	for sym := range 30 {
		extra := uint32(0)
		if sym >= 4 {
			extra = uint32(sym)/2 - 1
		}
		t[sym] = base<<16 | extra
		base += 1 << extra
	}
	t[30], t[31] = entryInvalid, entryInvalid
	return t
}

func clenTemplates() (t [19]uint32) {
	for sym := range t {
		t[sym] = uint32(sym) << 16
	}
	return t
}

// build fills t from the code lengths of the canonical Huffman code in lens
// (RFC 1951 3.2.2), symbol i having length lens[i] (0: unused). syms lists
// the symbols of nonzero length in increasing order, and count[l] is how
// many have length l (count[0] is not read): the header's reader collects
// both as it reads the lengths, so that build never scans the unused
// symbols (most of the 286 literal/length symbols in a small block). It
// accepts what compress/flate accepts: a complete code, a code of a single
// 1-bit symbol, or no code at all (decoding with the last two fails on the
// unused codes). primaryBits is the primary table's largest width;
// t.primary must have 1<<primaryBits entries.
func build(t *table, syms []uint16, lens []uint8, count *[maxCodeLen + 1]uint16, templates []uint32, primaryBits uint) bool {
	// offs[l]: where the codes of length l start in canonical order, summed
	// in a register (offs[l+1] = offs[l] + count[l] would wait for each
	// store to be forwarded to the next load).
	var offs [maxCodeLen + 1]uint16
	maxLen := uint(0)
	code := 0
	n := uint16(0)
	for l := uint(1); l <= maxCodeLen; l++ {
		code = code<<1 + int(count[l])
		offs[l] = n
		n += count[l]
		if count[l] != 0 {
			maxLen = l
		}
	}
	// code is now the number of (maxCodeLen)-bit codes the lengths use,
	// scaled: a complete code uses all 1<<maxCodeLen of them.
	complete := code == 1<<maxCodeLen
	single := maxLen == 1 && count[1] == 1
	if !complete && !single && maxLen != 0 {
		return false
	}
	width := min(maxLen, primaryBits)
	t.mask = 1<<width - 1
	if !complete {
		fillInvalid(t.primary[:1<<width])
		if maxLen == 0 {
			return true
		}
	}

	if maxLen <= min(smallWidth, primaryBits) { // then width == maxLen
		storeReplicated(t.primary[:1<<width], syms, lens, templates, count, width)
		t.sub = t.sub[:0]
		return true
	}

	// The symbols' entries (with their code lengths) sorted by length, then
	// value: canonical code order. The entry is made here, where the length
	// is at hand, so that the loops that store it only copy it.
	var scratch [288]uint32 // zeroed only for the codes that need it
	sorted := scratch[:n]
	sortEntries(sorted, syms, lens, templates, &offs)

	// Build the primary table at its width, doubling it from length to
	// length: a code of length l sits at its bit-reversed value in a table
	// of 1<<l entries, and a doubling copies it to where it belongs in the
	// larger table. Each code is stored once; the rest are copies, which are
	// cheap. Doublings before the shortest code copy nothing that counts
	// (every entry they would copy is stored or copied over later, or was
	// filled invalid above), so they are left out.
	t.sub = t.sub[:0]
	next := uint32(0) // the next code, MSB first
	i := 0
	size := 1
	for l := uint(1); l <= width; l++ {
		if i != 0 {
			copy(t.primary[size:2*size], t.primary[:size])
		}
		size *= 2
		if c := int(count[l]); c != 0 {
			next = storeCodes(t.primary[:size], sorted[i:i+c], next, l)
			i += c
		}
		next <<= 1
	}
	if maxLen <= primaryBits {
		return true
	}
	buildSubtables(t, sorted[i:n], *count, next, primaryBits, maxLen)
	return true
}

// smallWidth is the longest code for which build fills the table by storing
// each code at all its places (storeReplicated), rather than by sorting the
// codes and doubling the table: at most 1<<smallWidth stores, cheaper than
// the sort and the doublings' copies for the code-length code and for a
// small block's distance and literal/length codes (callgrind on the
// gatewaybench stream: 6 and 8 cost more than 7; docs/benchmarks.md).
// storeReplicated reverses codes as bytes: at most 8.
const smallWidth = 7

// storeReplicated fills p, a table of 1<<width entries for a code no longer
// than width, with the entries of syms: each code, assigned in symbol order
// from its length's first code (RFC 1951 3.2.2), at every index whose low
// bits are the code reversed.
//
//go:noinline
func storeReplicated(p []uint32, syms []uint16, lens []uint8, templates []uint32, count *[maxCodeLen + 1]uint16, width uint) {
	var next [maxCodeLen + 1]uint16 // next[1] = 0
	code := uint16(0)
	for l := uint(2); l <= width; l++ {
		code = (code + count[l-1]) << 1
		next[l] = code
	}
	for _, sym := range syms {
		l := uint(lens[sym] & 15)
		c := next[l]
		next[l] = c + 1
		e := templates[sym] + uint32(l)*0x101 // l<<8 | l
		// c < 1<<l <= 1<<smallWidth: one byte to reverse.
		step := uint(1) << l
		for j := uint(bits.Reverse8(uint8(c)) >> ((8 - l) & 7)); j < uint(len(p)); j += step {
			p[j] = e
		}
	}
}

// sortEntries stores the entries of syms in sorted, each at offs of its
// length (which it advances). A function of its own, like storeCodes.
//
//go:noinline
func sortEntries(sorted []uint32, syms []uint16, lens []uint8, templates []uint32, offs *[maxCodeLen + 1]uint16) {
	for _, sym := range syms {
		l := lens[sym] & 15
		o := offs[l]
		sorted[o] = templates[sym] + uint32(l)*0x101 // l<<8 | l
		offs[l] = o + 1
	}
}

// storeCodes stores entries, the entries of consecutive codes of length l
// starting with next (MSB first), at their bit-reversed codes in p, and
// returns the code after the last. A function of its own, for its loop to
// keep its few variables in registers (inlined into build, they were
// spilled to the stack).
//
//go:noinline
func storeCodes(p []uint32, entries []uint32, next uint32, l uint) uint32 {
	shift := (16 - l) & 15
	for _, e := range entries {
		p[bits.Reverse16(uint16(next))>>shift] = e
		next++
	}
	return next
}

// buildSubtables adds the codes longer than primaryBits, whose entries
// (canonical order) are in entries, starting with the code next (MSB first,
// at length primaryBits+1 scaled to primaryBits: next is the first unused
// primaryBits-bit prefix shifted once). Codes sharing a primaryBits prefix
// share a subtable, sized like zlib's inflate_table does: wide enough for the
// longest code with that prefix.
func buildSubtables(t *table, entries []uint32, count [maxCodeLen + 1]uint16, next uint32, primaryBits, maxLen uint) {
	prefixMask := uint32(1)<<primaryBits - 1
	curPrefix := ^uint32(0)
	var subStart, subWidth uint
	code := next
	l := primaryBits + 1
	for _, e := range entries {
		for uint(e>>8&15) > l {
			code <<= 1
			l++
		}
		rev := bits.Reverse32(code) >> (32 - l)
		prefix := rev & prefixMask
		if prefix != curPrefix {
			curPrefix = prefix
			subWidth = subtableWidth(count, l, primaryBits, maxLen)
			subStart = uint(len(t.sub))
			t.sub = append(t.sub, make([]uint32, 1<<subWidth)...)
			// A complete code fills every entry; should one stay empty, it
			// must not read as a zero-length match that consumes no input.
			fillInvalid(t.sub[subStart:])
			t.primary[prefix] = entrySub | uint32(subStart)<<16 | uint32(subWidth)<<8
		}
		sub := t.sub[subStart : subStart+1<<subWidth]
		for j := rev >> primaryBits; j < 1<<subWidth; j += 1 << (l - primaryBits) {
			sub[j] = e
		}
		count[l]--
		code++
	}
}

// subtableWidth is the width of a subtable whose first code has length l:
// it grows until the codes left of lengths l.. fill it (zlib's rule).
func subtableWidth(count [maxCodeLen + 1]uint16, l, primaryBits, maxLen uint) uint {
	w := l - primaryBits
	left := 1 << w
	for w+primaryBits < maxLen {
		left -= int(count[w+primaryBits])
		if left <= 0 {
			break
		}
		w++
		left <<= 1
	}
	return w
}

// countLengths counts the lengths in lens and lists the symbols of nonzero
// length, for build, into syms (which must have room for them).
func countLengths(lens []uint8, syms []uint16) (count [maxCodeLen + 1]uint16, n int) {
	for sym, l := range lens {
		count[l&15]++
		if l != 0 {
			syms[n] = uint16(sym)
			n++
		}
	}
	return count, n
}

func fillInvalid(t []uint32) {
	for i := range t {
		t[i] = entryInvalid
	}
}
