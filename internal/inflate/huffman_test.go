package inflate

import (
	"math/bits"
	"math/rand/v2"
	"testing"
)

// TestBuildDecodesEveryCode builds tables for random complete codes, of
// every longest length from 1 to 15 (narrower than the primary table, as
// wide, and wider: subtables), and looks up every code followed by random
// bits the way the decode loop does: each must find its symbol and length.
func TestBuildDecodesEveryCode(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name        string
		nsyms       int
		templates   []uint32
		primaryBits uint
	}{
		{"lit", 286, litTemplate[:286], litBits},
		{"dist", 30, distTemplate[:30], distBits},
		{"clen", 19, clenTemplate[:], clenBits},
	} {
		tab := table{primary: make([]uint32, 1<<tc.primaryBits)}
		for maxLen := uint(1); maxLen <= maxCodeLen; maxLen++ {
			if tc.name == "clen" && maxLen > 7 || maxLen >= uint(tc.nsyms) {
				continue
			}
			for range 20 {
				lens := randomCode(rng, tc.nsyms, maxLen)
				syms := make([]uint16, len(lens))
				count, n := countLengths(lens, syms)
				if !build(&tab, syms[:n], lens, &count, tc.templates, tc.primaryBits) {
					t.Fatalf("%s: build refused the complete code %v", tc.name, lens)
				}
				if want := uint32(1)<<min(maxLen, tc.primaryBits) - 1; tab.mask != want {
					t.Fatalf("%s, longest code %d: mask %#x, want %#x", tc.name, maxLen, tab.mask, want)
				}
				checkCodes(t, rng, &tab, lens, tc.templates, tc.primaryBits)
			}
		}
	}
}

// checkCodes looks up every code of lens in tab, with random bits after it.
func checkCodes(t *testing.T, rng *rand.Rand, tab *table, lens []uint8, templates []uint32, primaryBits uint) {
	t.Helper()
	var next [maxCodeLen + 2]uint32 // the canonical codes (RFC 1951 3.2.2)
	var count [maxCodeLen + 1]uint32
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	for l := 1; l <= maxCodeLen; l++ {
		next[l+1] = (next[l] + count[l]) << 1
	}
	for sym, l := range lens {
		if l == 0 {
			continue
		}
		code := next[l]
		next[l]++
		rev := uint64(bits.Reverse32(code) >> (32 - l))
		for range 4 {
			b := rev | rng.Uint64()<<l
			e := tab.primary[uint32(b)&tab.mask]
			if e&entrySub != 0 {
				e = tab.sub[e>>16+uint32(b>>primaryBits)&(1<<(e>>8&15)-1)]
			}
			if want := templates[sym] + uint32(l)<<8 + uint32(l); e != want {
				t.Fatalf("symbol %d, code %0*b: entry %#x, want %#x (lengths %v)", sym, l, code, e, want, lens)
			}
		}
	}
}

// randomCode returns the lengths of a random complete code over nsyms
// symbols whose longest code is maxLen (< nsyms): a chain of lengths 1 to
// maxLen (and maxLen again), then leaves shorter than maxLen split at random,
// given to random symbols.
func randomCode(rng *rand.Rand, nsyms int, maxLen uint) []uint8 {
	var leaves []uint8
	for l := uint8(1); l <= uint8(maxLen); l++ {
		leaves = append(leaves, l)
	}
	leaves = append(leaves, uint8(maxLen))
	most := min(nsyms, 1<<maxLen) // leaves a code of maxLen can have
	for n := len(leaves) + rng.IntN(most-len(leaves)+1); len(leaves) < n; {
		if i := rng.IntN(len(leaves)); uint(leaves[i]) < maxLen {
			leaves[i]++
			leaves = append(leaves, leaves[i])
		}
	}
	lens := make([]uint8, nsyms)
	for i, sym := range rng.Perm(nsyms)[:len(leaves)] {
		lens[sym] = leaves[i]
	}
	return lens
}
