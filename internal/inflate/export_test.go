package inflate

import (
	"fmt"
	"math/bits"
)

// forgotten marks the dynamic tables as seen by DynamicTables: a mask no
// build sets.
const forgotten = 1 << 31

// Tables is what the last dynamic block's tables hold: their contents, for
// comparing, and their primary tables' widths.
type Tables struct {
	Lit, Dist           string
	LitWidth, DistWidth int
}

// DynamicTables returns the tables the last dynamic block built, and false
// if no dynamic block has built them since the last call. Call it between
// messages only.
func DynamicTables(s *Stream) (Tables, bool) {
	if s.lit.primary == nil || s.lit.mask == forgotten {
		return Tables{}, false
	}
	t := Tables{tableContents(&s.lit), tableContents(&s.dist), bits.Len32(s.lit.mask), bits.Len32(s.dist.mask)}
	s.lit.mask = forgotten
	return t, true
}

func tableContents(t *table) string {
	return fmt.Sprint(t.mask, t.primary[:t.mask+1], t.sub)
}
