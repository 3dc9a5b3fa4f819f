package gateway

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzScanValue checks the scanner under decodeEnvelope against
// encoding/json in both directions: a message (whitespace around one value
// allowed) is accepted exactly when json.Valid accepts it, except that nesting
// deeper than maxDepth is refused.
func FuzzScanValue(f *testing.F) {
	for _, s := range scannerSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p := parser{buf: in}
		p.skipSpace()
		err := p.skipValue()
		p.skipSpace()
		accepted := err == nil && p.pos == len(in)
		if accepted == json.Valid(in) {
			return
		}
		if !accepted && err != nil && err.(*DecodeError).Reason == "nesting too deep" && nesting(in) > maxDepth {
			return
		}
		t.Fatalf("%q: scanner accepted=%v (%v), json.Valid says %v", in, accepted, err, !accepted)
	})
}

// nesting is the deepest nesting of brackets outside strings in in, a JSON
// text; an empty container counts, as it does not for maxDepth.
func nesting(in []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(in); i++ {
		switch c := in[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// scannerSeeds are the edges of the scanner's fast paths: a string's stop
// byte (closing quote, escape, bad escape, control byte) at each offset of
// the first two 8-byte words and across the end of the message, what
// follows a key or a string value in the same word, long and
// UTF-8 strings, numbers ending the message, and nesting at the limit.
func scannerSeeds() []string {
	var seeds []string
	stops := []string{`"`, `\"`, `\\`, `\/`, `\n`, `\u00e9`, `\uD83D\uDE00`, `\x`, `\u00g0`, `\u12`, "\x00", "\x1f", "\x7f", " ", "\xff"}
	for n := 0; n <= 17; n++ {
		for _, stop := range stops {
			s := `"` + strings.Repeat("a", n) + stop + `b"`
			seeds = append(seeds, s, s[:len(s)-1], `{"k`+s[1:]+`:1}`)
		}
		// A string value and the next key, read from one word by scanFast.
		a := strings.Repeat("a", n)
		seeds = append(seeds, `{"x":"`+a+`","k":1}`, `["`+a+`","k"]`, `["`+a+`","k":1]`, `{"`+a+`":"v","k":"`+a+`"}`)
	}
	long := strings.Repeat("gateway shard é 日本 😀 ", 40)
	seeds = append(seeds,
		`"`+long+`"`, `"`+strings.ReplaceAll(long, " ", `\n`)+`"`, `"`+long, `"`+strings.Repeat(`\\`, 100)+`"`,
		`0`, `-`, `-0`, `01`, `1.`, `1.5`, `1e`, `1e+`, `1E-7`, `-0.5e+10`, `123`, `[1,2`, `{"a":1.0e`,
		` true `, `fals`, `nul`, `[true,false,null]`, `{"a":[],"b":{},"c":[{}]}`, `[1,]`, `{"a":1,}`, `{,}`, `{"a"1}`,
		strings.Repeat("[", maxDepth)+strings.Repeat("]", maxDepth),
		strings.Repeat("[", maxDepth+1)+strings.Repeat("]", maxDepth+1),
		strings.Repeat("[", maxDepth+1)+"1"+strings.Repeat("]", maxDepth+1),
		strings.Repeat(`{"a":`, maxDepth)+"1"+strings.Repeat("}", maxDepth),
		strings.Repeat(`{"a":`, maxDepth+1)+"1"+strings.Repeat("}", maxDepth+1),
	)
	return seeds
}

// envelopeSeeds puts the scanner's seeds where an envelope has d.
func envelopeSeeds() []string {
	var seeds []string
	for _, s := range scannerSeeds() {
		seeds = append(seeds, `{"op":0,"t":"X","s":1,"d":`+s+`}`)
	}
	return seeds
}

// FuzzScalarEnd checks members' shortcut for the envelope's small values
// against scanValue and encoding/json: whatever scalarEnd takes is one valid
// JSON value, the one scanValue reads there.
func FuzzScalarEnd(f *testing.F) {
	for _, s := range []string{`"MESSAGE_CREATE",`, `0,`, `01,`, `123}`, `1.5,`, `1e3}`, `-1,`, `"a\"b",`, "\"a\x01\",", `"abcdefghijklmnop"}`, `"a"`, `12`, `"a" ,`, `null,`} {
		f.Add([]byte(s))
	}
	for _, s := range scannerSeeds() {
		f.Add([]byte(s + ","))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		j := scalarEnd(in, 0)
		if j < 0 {
			return
		}
		if !json.Valid(in[:j]) {
			t.Fatalf("%q: scalarEnd took %q, not valid JSON", in, in[:j])
		}
		if end, reason := scanValue(in, 0); reason != "" || end != j {
			t.Fatalf("%q: scalarEnd %d, scanValue %d %q", in, j, end, reason)
		}
	})
}
