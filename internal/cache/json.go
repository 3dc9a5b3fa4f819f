package cache

import (
	"bytes"
	"encoding/json"
)

// A small reader of compact JSON's top level: a dispatch is compacted (and so
// validated) once, then its fields are sub-slices of it, and the object the
// cache stores is the dispatch with a few fields cut out. encoding/json's map
// decoding and sorted re-encoding cost several times more, on every dispatch
// the cache keeps.

// field is one top-level member of an object: its quoted key as it appears,
// its key, and its raw value.
type field struct {
	quoted []byte
	key    []byte // unescaped
	val    json.RawMessage
}

// obj is a compact JSON object split into its top-level fields.
type obj struct {
	fields []field
}

// parse validates and compacts raw, and splits it if it is an object.
func parse(raw []byte) (obj, bool) {
	var buf bytes.Buffer
	buf.Grow(len(raw))
	if json.Compact(&buf, raw) != nil {
		return obj{}, false
	}
	return split(buf.Bytes())
}

// split reads a compact, valid JSON value (a sub-slice of parse's output) as
// an object; false for any other value.
func split(raw []byte) (obj, bool) {
	if len(raw) < 2 || raw[0] != '{' {
		return obj{}, false
	}
	o := obj{fields: make([]field, 0, 16)}
	for i := 1; i < len(raw) && raw[i] == '"'; {
		ke := stringEnd(raw, i)
		f := field{quoted: raw[i:ke], key: raw[i+1 : ke-1]}
		if bytes.IndexByte(f.quoted, '\\') >= 0 {
			var k string
			if json.Unmarshal(f.quoted, &k) != nil {
				return obj{}, false
			}
			f.key = []byte(k)
		}
		ve := valueEnd(raw, ke+1)
		f.val = raw[ke+1 : ve]
		o.fields = append(o.fields, f)
		i = ve
		if i < len(raw) && raw[i] == ',' {
			i++
		}
	}
	return o, true
}

// elements reads a compact, valid JSON value as an array; false for any
// other value but null (no elements).
func elements(raw []byte) ([]json.RawMessage, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, true
	}
	if raw[0] != '[' {
		return nil, false
	}
	var out []json.RawMessage
	for i := 1; i < len(raw) && raw[i] != ']'; {
		e := valueEnd(raw, i)
		out = append(out, raw[i:e])
		i = e
		if i < len(raw) && raw[i] == ',' {
			i++
		}
	}
	return out, true
}

// stringEnd is the index after the JSON string starting at i.
func stringEnd(raw []byte, i int) int {
	for j := i + 1; j < len(raw); j++ {
		switch raw[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(raw)
}

// valueEnd is the index after the compact JSON value starting at i.
func valueEnd(raw []byte, i int) int {
	switch raw[i] {
	case '"':
		return stringEnd(raw, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(raw); j++ {
			switch raw[j] {
			case '"':
				j = stringEnd(raw, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(raw)
	}
	for j := i; j < len(raw); j++ {
		if raw[j] == ',' || raw[j] == '}' || raw[j] == ']' {
			return j
		}
	}
	return len(raw)
}

// get is the raw value of key; nil when absent.
func (o obj) get(key string) json.RawMessage {
	for _, f := range o.fields {
		if string(f.key) == key {
			return f.val
		}
	}
	return nil
}

// snowflake reads a field holding an ID; false unless it is one (digits),
// so that no dispatch builds a key of its choosing.
func (o obj) snowflake(key string) (string, bool) {
	v := o.get(key)
	if len(v) < 2 || v[0] != '"' || !isSnowflake(string(v[1:len(v)-1])) {
		return "", false
	}
	return string(v[1 : len(v)-1]), true
}

// stored is the object as the cache stores it (see dropped).
func (o obj) stored(drop ...string) string {
	var b bytes.Buffer
	b.WriteByte('{')
	for _, f := range o.fields {
		if dropped(f.key, drop) {
			continue
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.Write(f.quoted)
		b.WriteByte(':')
		b.Write(f.val)
	}
	b.WriteByte('}')
	return b.String()
}

// mergePairs are the fields but guild_id and drop as the script merges
// them: quoted key, compact value.
func (o obj) mergePairs(drop ...string) []string {
	pairs := make([]string, 0, 2*len(o.fields))
	for _, f := range o.fields {
		if !dropped(f.key, drop) {
			pairs = append(pairs, string(f.quoted), string(f.val))
		}
	}
	return pairs
}

// dropped: the cache keeps no guild_id (Discord adds it in dispatches only)
// and none of drop.
func dropped(key []byte, drop []string) bool {
	if string(key) == "guild_id" {
		return true
	}
	for _, d := range drop {
		if string(key) == d {
			return true
		}
	}
	return false
}
