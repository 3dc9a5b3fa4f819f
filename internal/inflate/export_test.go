package inflate

import "fmt"

// forgotten marks the dynamic tables as seen by DynamicTables: a mask no
// build sets.
const forgotten = 1 << 31

// DynamicTables returns the contents of the tables the last dynamic block
// built, for comparing, and false if no dynamic block has built them since
// the last call. Call it between messages only.
func DynamicTables(s *Stream) (lit, dist string, built bool) {
	if s.lit.primary == nil || s.lit.mask == forgotten {
		return "", "", false
	}
	lit, dist = tableContents(&s.lit), tableContents(&s.dist)
	s.lit.mask = forgotten
	return lit, dist, true
}

func tableContents(t *table) string {
	return fmt.Sprint(t.mask, t.primary[:t.mask+1], t.sub)
}
