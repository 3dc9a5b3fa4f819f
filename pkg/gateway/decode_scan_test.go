package gateway

import (
	"encoding/json"
	"strings"
	"testing"
)

// scanAccepts reports whether scanValue accepts in as one JSON text
// (whitespace around it allowed), as FuzzScanValue reads it.
func scanAccepts(in []byte) bool {
	p := parser{buf: in}
	p.skipSpace()
	err := p.skipValue()
	p.skipSpace()
	return err == nil && p.pos == len(in)
}

// TestScanFastEdges checks scanValue against json.Valid on the inputs where
// scanFast reads more than one token from one 8-byte word: a key's closing
// quote, colon and the value's first byte, and a string value's closing
// quote with the next key's comma and quote, for every offset of those bytes
// in the word and across its end, in objects, arrays and at the top level,
// with the bytes there right, wrong, escaped or separated by whitespace.
func TestScanFastEdges(t *testing.T) {
	var contents []string // string contents, the last byte at every offset of a word
	for n := 0; n <= 17; n++ {
		s := strings.Repeat("a", n)
		contents = append(contents, s)
		if n > 0 {
			contents = append(contents, s[1:]+`\"`, s[1:]+`\\`, s[1:]+"\x01", s[1:]+`\x`, s[1:]+"\xe9")
		}
	}
	values := []string{`1`, `"v"`, `""`, `true`, `false`, `null`, `[]`, `{}`, `[1]`, `{"a":1}`, `-1`, `0.5`, ` 1`, `x`, "\x01", ``, `,`}
	count := 0
	check := func(in string) {
		t.Helper()
		count++
		if got, want := scanAccepts([]byte(in)), json.Valid([]byte(in)); got != want {
			t.Errorf("%q: scanValue accepts=%v, json.Valid=%v", in, got, want)
		}
	}
	for _, s := range contents {
		for _, v := range values {
			// A key, then what may follow its closing quote.
			for _, colon := range []string{`:`, ` :`, `: `, `;`, ``, `"`} {
				check(`{"` + s + `"` + colon + v + `}`)
				check(`{"x":0,"` + s + `"` + colon + v + `}`)
				check(`{"` + s + `"` + colon + v) // the end of the message
			}
			// A string value, then what may follow its closing quote.
			for _, next := range []string{`,"k":`, `,"k"`, `,"`, `, "k":`, `,k":`, `,`, `"k":`, `,"k`} {
				check(`{"x":"` + s + `"` + next + v + `}`)
				check(`["` + s + `"` + next + v + `]`)
				check(`[{"x":"` + s + `"` + next + v + `}]`)
				check(`"` + s + `"` + next + v)
			}
		}
	}
	if t.Failed() {
		return
	}
	t.Logf("%d inputs agree with json.Valid", count)
}
