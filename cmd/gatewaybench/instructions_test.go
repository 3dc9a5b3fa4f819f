package main

import (
	"strings"
	"testing"
)

// parseIRefs reads cachegrind's summary in the layouts valgrind prints, and
// refuses output without exactly one such line (a crashed run, a valgrind
// without cachegrind) instead of reading a number from elsewhere.
func TestParseIRefs(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		want      int64
		ok        bool
	}{
		{"3.19 layout", "==15707== Command: gb client\n{\"events\":3}\n==15707== \n==15707== I   refs:      756,295,899\n", 756295899, true},
		{"no padding", "==1== I refs: 12\n", 12, true},
		{"none", "==1== Command: gb client\n==1== Process terminating with default action of signal 11\n", 0, false},
		{"two", "==1== I refs: 12\n==2== I refs: 13\n", 0, false},
		{"not the summary", "I refs: 12\n==1== I   refs:      1,2x\n", 0, false},
	} {
		got, err := parseIRefs(tc.out)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%s: parseIRefs = %d, %v; want %d, ok %v", tc.name, got, err, tc.want, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "I refs") {
			t.Errorf("%s: the error does not say what was missing: %v", tc.name, err)
		}
	}
}
