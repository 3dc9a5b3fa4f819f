package cache

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
)

// Diff compares two states in the contract's shape (`worker cache dump`,
// the fake's /_fake/state) as parsed JSON, field by field, looking only at
// the kinds of kinds: a missing map equals {}, a missing unavailable false.
// It returns one line per difference, none when equal.
func Diff(want, got []byte, kinds Kinds) ([]string, error) {
	w, err := parseState(want)
	if err != nil {
		return nil, fmt.Errorf("want: %w", err)
	}
	g, err := parseState(got)
	if err != nil {
		return nil, fmt.Errorf("got: %w", err)
	}
	fields := []string{"guild", "unavailable"}
	for _, h := range hashKinds {
		if kinds.Has(h.kind) {
			fields = append(fields, h.name)
		}
	}
	if kinds.Has(Messages) {
		fields = append(fields, "messages")
	}
	var diffs []string
	for _, id := range unionKeys(w, g) {
		wg, gg := asMap(w[id]), asMap(g[id])
		if w[id] == nil || g[id] == nil {
			diffs = append(diffs, fmt.Sprintf("guild %s: want present %v, got present %v", id, w[id] != nil, g[id] != nil))
			continue
		}
		for _, f := range fields {
			diffs = append(diffs, diffField(id, f, wg[f], gg[f])...)
		}
	}
	return diffs, nil
}

func parseState(b []byte) (map[string]any, error) {
	var st struct {
		Guilds map[string]any `json:"guilds"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&st); err != nil {
		return nil, err
	}
	return st.Guilds, nil
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func unionKeys(a, b map[string]any) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// diffField compares one field of a guild; a kind's map is compared entry
// by entry so that the lines name the object that differs.
func diffField(guild, field string, want, got any) []string {
	switch field {
	case "guild":
		if !reflect.DeepEqual(want, got) {
			return []string{fmt.Sprintf("guild %s: guild: want %s, got %s", guild, show(want), show(got))}
		}
		return nil
	case "unavailable":
		if want == true != (got == true) {
			return []string{fmt.Sprintf("guild %s: unavailable: want %v, got %v", guild, want, got)}
		}
		return nil
	}
	wm, gm := asMap(want), asMap(got)
	var diffs []string
	for _, id := range unionKeys(wm, gm) {
		if !reflect.DeepEqual(wm[id], gm[id]) && !(empty(wm[id]) && empty(gm[id])) {
			diffs = append(diffs, fmt.Sprintf("guild %s: %s[%s]: want %s, got %s", guild, field, id, show(wm[id]), show(gm[id])))
		}
	}
	return diffs
}

// empty: absent, [] or {} (a channel without messages may be either).
func empty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}

func show(v any) string {
	if v == nil {
		return "(absent)"
	}
	b, _ := json.Marshal(v)
	return string(b)
}
