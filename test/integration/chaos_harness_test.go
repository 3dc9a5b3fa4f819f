package integration

import "testing"

func TestRequireBinariesUnderCI(t *testing.T) {
	for _, tc := range []struct {
		ci, require string
		want        bool
	}{
		{"", "", false},
		{"true", "", true},
		{"1", "", true},
		{"false", "", false},
		{"", "1", true},
	} {
		t.Setenv("CI", tc.ci)
		t.Setenv("REDISTEST_REQUIRE", tc.require)
		if got := requireBinaries(); got != tc.want {
			t.Errorf("CI=%q REDISTEST_REQUIRE=%q: requireBinaries() = %v, want %v (a broken build must fail under CI)",
				tc.ci, tc.require, got, tc.want)
		}
	}
}
