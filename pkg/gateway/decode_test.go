package gateway

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestDecodeEnvelope(t *testing.T) {
	cases := []struct {
		in      string
		op      Opcode
		seq     int
		hasSeq  bool
		typ     EventType
		d       string
		wantErr bool
	}{
		{in: `{"op":11}`, op: 11},
		{in: `{"op":10,"d":{"heartbeat_interval":41250,"_trace":["x"]}}`, op: 10, d: `{"heartbeat_interval":41250,"_trace":["x"]}`},
		{in: `{"t":"MESSAGE_CREATE","s":42,"op":0,"d":{"content":"a\"b\\u00e9"}}`, op: 0, seq: 42, hasSeq: true, typ: "MESSAGE_CREATE", d: `{"content":"a\"b\\u00e9"}`},
		{in: ` { "op" : 0 , "s" : null , "t" : null , "d" : null } `, op: 0, d: `null`},
		{in: `{"op":9,"d":false}`, op: 9, d: `false`},
		{in: `{"op":0,"t":"CUSTOM_\u0041","s":1,"d":[1,-2.5e+3,true,{}]}`, op: 0, seq: 1, hasSeq: true, typ: "CUSTOM_A", d: `[1,-2.5e+3,true,{}]`},
		{in: `{"op":0,"x":{"nested":[[[]]]},"op":7}`, op: 7},
		{in: `{"op":1.5}`, wantErr: true},
		{in: `{"op":"1"}`, wantErr: true},
		{in: `{"d":{}}`, wantErr: true},
		{in: `{}`, wantErr: true},
		{in: `[]`, wantErr: true},
		{in: `{"op":0,"s":"1"}`, wantErr: true},
		{in: `{"op":0,"t":5}`, wantErr: true},
		{in: `{"op":0,"d":{"a":01}}`, wantErr: true},
		{in: `{"op":0,"d":{"a":"\x"}}`, wantErr: true},
		{in: `{"op":0,"d":{"a":tru}}`, wantErr: true},
		{in: `{"op":0,"d":{"a" 1}}`, wantErr: true},
		{in: `{"op":0,"d":[1,]}`, wantErr: true},
		{in: `{"op":0} x`, wantErr: true},
		{in: `{"op":0,"d":"unterminated}`, wantErr: true},
		{in: "{\"op\":0,\"d\":\"ctl\x01\"}", wantErr: true},
		{in: `{"op":99999999999999999999}`, wantErr: true},
		{in: ``, wantErr: true},
	}
	for _, tc := range cases {
		env, err := decodeEnvelope([]byte(tc.in))
		if tc.wantErr {
			if err == nil {
				t.Errorf("%s: decoded, want an error", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if env.op != tc.op || env.seq != tc.seq || env.hasSeq != tc.hasSeq || env.t != tc.typ || string(env.d) != tc.d {
			t.Errorf("%s: got op=%d s=%d/%v t=%q d=%s", tc.in, env.op, env.seq, env.hasSeq, env.t, env.d)
		}
	}
}

func TestDecodeEnvelopeDeepNestingIsAnError(t *testing.T) {
	in := []byte(`{"op":0,"d":` + string(bytes.Repeat([]byte("["), 100000)) + string(bytes.Repeat([]byte("]"), 100000)) + `}`)
	if _, err := decodeEnvelope(in); err == nil {
		t.Fatal("100000 levels of nesting accepted")
	}
}

// TestDecodeEnvelopeNestingLimit: d may nest maxDepth non-empty containers
// (arrays or objects), not one more.
func TestDecodeEnvelopeNestingLimit(t *testing.T) {
	nested := func(open, close string, n int) string {
		return strings.Repeat(open, n) + "1" + strings.Repeat(close, n)
	}
	for _, c := range []struct{ open, close string }{{"[", "]"}, {`{"a":`, "}"}} {
		if _, err := decodeEnvelope([]byte(`{"op":0,"d":` + nested(c.open, c.close, maxDepth) + `}`)); err != nil {
			t.Errorf("%s nested %d deep: %v", c.open, maxDepth, err)
		}
		if _, err := decodeEnvelope([]byte(`{"op":0,"d":` + nested(c.open, c.close, maxDepth+1) + `}`)); err == nil {
			t.Errorf("%s nested %d deep accepted", c.open, maxDepth+1)
		}
	}
}

// FuzzDecodeEnvelope checks the decoder against encoding/json: it never
// panics, accepts only valid JSON, and agrees with encoding/json on op, s, t
// and d whenever it accepts.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"op":11}`, `{"op":0,"s":1,"t":"READY","d":{"session_id":"x","resume_gateway_url":"wss://a"}}`,
		`{"op":9,"d":true}`, `{"op":10,"d":{"heartbeat_interval":45000}}`, `{"op":0,"s":null,"t":null,"d":null}`,
		`{"op":0,"d":"\u00e9\n","t":"A\"B"}`, `{"op":1e3}`, `{"op":-0,"d":[{"a":[1,2,{"b":null}]}]}`,
	} {
		f.Add([]byte(s))
	}
	for _, s := range envelopeSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		env, err := decodeEnvelope(in)
		if err != nil {
			return
		}
		if !json.Valid(in) {
			t.Fatalf("accepted invalid JSON %q", in)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(in, &fields); err != nil {
			t.Fatalf("accepted %q that encoding/json rejects: %v", in, err)
		}
		if bytes.Contains(in, []byte(`\`)) {
			return // escaped keys: encoding/json unescapes them, we do not need to
		}
		var op int
		if err := json.Unmarshal(fields["op"], &op); err != nil || Opcode(op) != env.op {
			t.Fatalf("%q: op %d, encoding/json says %s", in, env.op, fields["op"])
		}
		if d, ok := fields["d"]; ok && !bytes.Equal(compact(t, d), compact(t, env.d)) {
			t.Fatalf("%q: d %s, encoding/json says %s", in, env.d, d)
		}
		if s, ok := fields["s"]; ok && string(s) != "null" {
			var seq int
			if err := json.Unmarshal(s, &seq); err != nil || seq != env.seq || !env.hasSeq {
				t.Fatalf("%q: s %d, encoding/json says %s", in, env.seq, s)
			}
		}
	})
}

func compact(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("compact %q: %v", b, err)
	}
	return buf.Bytes()
}

// TestPlainEndFindsTheFirstStopByte checks the SWAR test against a byte loop
// for every pair of bytes at every place in a word (the borrows of the
// subtractions run from one byte into the next).
func TestPlainEndFindsTheFirstStopByte(t *testing.T) {
	isStop := func(c byte) bool { return c == '"' || c == '\\' || c < 0x20 }
	word := []byte("abcdefgh")
	for pos := range 7 {
		for a := range 256 {
			for b := range 256 {
				copy(word, "abcdefgh")
				word[pos], word[pos+1] = byte(a), byte(b)
				want := plainEndNaive(word, isStop)
				if got := plainEnd(word, 0); got != want {
					t.Fatalf("%q: plainEnd %d, want %d", word, got, want)
				}
			}
		}
	}
}

// plainEndNaive is plainEnd for one 8-byte word, a byte at a time.
func plainEndNaive(word []byte, isStop func(byte) bool) int {
	for i, c := range word {
		if isStop(c) {
			return i
		}
	}
	return len(word)
}
