package cache

import (
	"encoding/json"
	"strconv"
	"testing"
)

// FuzzChanges: any d of any type yields cells the script can read (known
// operations, argument counts within the cells, a snowflake guild), so that
// no dispatch makes the commit script fail or build a key of its choosing.
func FuzzChanges(f *testing.F) {
	types := make([]string, 0, len(handlers))
	for t := range handlers {
		types = append(types, t)
	}
	for i, seed := range []string{
		`{"id":"1","channels":[{"id":"2"}],"members":[{"user":{"id":"3"}}]}`,
		`{"guild_id":"1","id":"2","channel_id":"3","user":{"id":"4"},"role":{"id":"5"},"ids":["6"]}`,
		`{"guilds":[{"id":"1"}]}`, `{"guild_id":"1","user_id":"2","channel_id":null}`, `[]`, `null`, `{"id":1}`,
	} {
		f.Add(uint8(i), []byte(seed))
	}
	f.Fuzz(func(t *testing.T, which uint8, d []byte) {
		typ := types[int(which)%len(types)]
		_ = Config{Kinds: Guilds | Messages, Messages: 3}.Changes(typ, d) // a library caller's odd kinds: no panic
		cells := all.Changes(typ, d)
		_, got := ops(t, cells)
		for _, op := range got {
			if n, _ := strconv.Atoi(op[1]); n != len(op)-2 {
				t.Fatalf("%s: operation %q", typ, op)
			}
			for _, v := range storedValues(op) {
				var m map[string]json.RawMessage
				if json.Unmarshal([]byte(v), &m) != nil {
					t.Fatalf("%s: %s stores %q, not a JSON object", typ, op[0], v)
				}
				if _, ok := m["guild_id"]; ok {
					t.Fatalf("%s: %s stores guild_id: %q", typ, op[0], v)
				}
			}
		}
	})
}

// storedValues are the JSON objects an operation stores.
func storedValues(op []string) []string {
	args := op[2:]
	switch op[0] {
	case opGuild:
		return args
	case opMsg:
		return args[1:2]
	case opPut, opReplace:
		var out []string
		for i := 2; i < len(args); i += 2 {
			out = append(out, args[i])
		}
		return out
	}
	return nil
}
