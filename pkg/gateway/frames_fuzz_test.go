package gateway

import "testing"

// FuzzAdmitSeq drives the seq guard with sequences of s values from the
// network (each op: a signed s relative to the last seq, whether s was
// present, whether the dispatch is the first after RESUMED) and checks its
// promises: the resume point moves only to last+1 or to a jump refused just
// before, never backwards; a jump is refused at once, and taken only the
// second time in a row, so a server repeating it cannot make a loop.
func FuzzAdmitSeq(f *testing.F) {
	f.Add([]byte{1, 0, 1, 0, 3, 0, 3, 1})
	f.Add([]byte{0x80, 0, 0xff, 0, 5, 2, 5, 3, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		g := &gatewayImpl{}
		lastGap := 0
		for len(ops) >= 2 {
			delta, flags := int(int8(ops[0])), ops[1]
			ops = ops[2:]
			hasSeq, lastChance := flags&1 == 0, flags&2 != 0
			before, had := g.state.Sequence, g.hasSeq
			seq := before + delta
			v, last := g.admitSeq(seq, hasSeq, lastChance)
			after := g.state.Sequence
			if last != before {
				t.Fatalf("reported last %d, was %d", last, before)
			}
			switch v {
			case seqNext:
				if !hasSeq || seq <= 0 || (had && seq != before+1) || after != seq {
					t.Fatalf("took s %d (has %v) after %d (had %v): now %d", seq, hasSeq, before, had, after)
				}
			case seqGapAccepted:
				if seq != lastGap || seq <= before+1 || after != seq {
					t.Fatalf("accepted jump to %d after %d; last refused jump %d", seq, before, lastGap)
				}
				lastGap = 0
			case seqGap:
				if seq <= before+1 || after != before || seq == lastGap {
					t.Fatalf("refused jump to %d after %d (last refused %d): now %d", seq, before, lastGap, after)
				}
				lastGap = seq
			case seqBad:
				if after != before || (hasSeq && seq > 0 && (!had || seq > before)) {
					t.Fatalf("refused s %d (has %v) after %d (had %v): now %d", seq, hasSeq, before, had, after)
				}
			}
			if lastChance && v != seqGap {
				lastGap = 0
			}
		}
	})
}
