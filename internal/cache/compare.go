package cache

import (
	"strings"

	"github.com/shardfleet/shardfleet/internal/statediff"
)

// Diff compares two states in the contract's shape (`worker cache dump`,
// the fake's /_fake/state) by statediff's rules, the ones the fake's own
// tests use, looking only at the kinds of kinds (none: every field). It
// returns one line per difference, none when equal.
func Diff(want, got []byte, kinds Kinds) ([]string, error) {
	var names []string
	if kinds != 0 {
		names = strings.Split(kinds.String(), ",")
	}
	return statediff.Diff(want, got, 0, names...)
}
