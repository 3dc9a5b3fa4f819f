package statediff

import (
	"strings"
	"testing"
)

// TestDiff: missing equals empty, kinds limit the comparison, a guild on one
// side only is one difference, and each line names the guild, field and id.
func TestDiff(t *testing.T) {
	a := `{"guilds":{"1":{"guild":{"id":"1","n":12345678901234567890},"unavailable":false,"channels":{"2":{"id":"2"}},
		"roles":{},"presences":{"3":{"status":"online"}},"messages":{"2":[]}}}}`
	b := `{"guilds":{"1":{"guild":{"id":"1","n":12345678901234567890},"channels":{"2":{"id":"2"}},"presences":{"3":{"status":"idle"}}}}}`
	check := func(name, want, got string, max int, kinds []string, lines ...string) {
		t.Helper()
		d, err := Diff([]byte(want), []byte(got), max, kinds...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(d) != len(lines) {
			t.Fatalf("%s: %d differences %v, want %d", name, len(d), d, len(lines))
		}
		for i, l := range lines {
			if !strings.Contains(d[i], l) {
				t.Fatalf("%s: difference %q, want it to name %q", name, d[i], l)
			}
		}
	}
	check("missing equals empty", a, b, 0, []string{"guilds", "channels", "roles", "messages"})
	check("every field", a, b, 0, nil, "guild 1 presences[3]")
	check("a big number is kept as written", a, strings.Replace(b, "890}", "891}", 1), 0, []string{"guilds"}, "guild 1 guild:")
	check("a guild on one side", a, `{"guilds":{}}`, 0, []string{"channels"}, "guild 1: want present true, got present false")
	check("unavailable", a, strings.Replace(b, `"channels"`, `"unavailable":true,"channels"`, 1), 0, []string{"guilds"},
		"guild 1 unavailable: want false, got true")
	check("messages", `{"guilds":{"1":{"messages":{"2":[{"id":"5"}]}}}}`, `{"guilds":{"1":{"messages":{"2":[]}}}}`, 0,
		[]string{"messages"}, "guild 1 messages[2]")
	check("max", a, `{"guilds":{"1":{},"2":{}}}`, 2, nil, "guild 1 guild", "guild 1 channels[2]")
	if _, err := Diff([]byte(a), []byte(b), 0, "emoji"); err == nil || !strings.Contains(err.Error(), "unknown kind") {
		t.Fatalf("unknown kind: %v", err)
	}
	if _, err := Diff([]byte(a), []byte(`[`), 0); err == nil {
		t.Fatal("a state that is not JSON compared")
	}
}
