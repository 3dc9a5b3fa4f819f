// Package statediff is the one comparison of two states in the cache
// contract's JSON shape (issue 11, docs/cache.md): the fake's ground truth
// (GET /_fake/state, gatewaytest.Diff) and the fleet's cache (`worker cache
// dump`, cache.Diff) are both judged by it, so a test of either side and the
// end-to-end tests cannot disagree on what "equal" means.
package statediff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
)

// kindFields maps each kind of the fleet's CACHE setting to the guild
// fields it covers.
var kindFields = map[string][]string{
	"guilds": {"guild", "unavailable"}, "channels": {"channels"}, "roles": {"roles"},
	"emojis": {"emojis", "stickers"}, "voice_states": {"voice_states"}, "members": {"members"},
	"presences": {"presences"}, "messages": {"messages"},
}

// allFields are a guild's fields in the order differences are listed.
var allFields = []string{"guild", "unavailable", "channels", "roles", "emojis", "stickers", "members",
	"voice_states", "presences", "messages"}

// Diff compares want and got as parsed JSON (numbers kept as written), field
// by field, and returns the differences, at most max of them (max <= 0:
// all), each naming the guild, field and id. A guild present on one side
// only is one difference; within a guild a missing map or list equals an
// empty one, and a missing "unavailable" equals false. kinds limits the
// comparison to those kinds of the CACHE setting; none compares every field.
// It fails on an unknown kind or on input that is not a state.
func Diff(want, got []byte, max int, kinds ...string) ([]string, error) {
	fields, err := fieldsOf(kinds)
	if err != nil {
		return nil, err
	}
	w, err := parse(want)
	if err != nil {
		return nil, fmt.Errorf("want: %w", err)
	}
	g, err := parse(got)
	if err != nil {
		return nil, fmt.Errorf("got: %w", err)
	}
	var out []string
	for _, gid := range unionKeys(w, g) {
		wg, wok := w[gid].(map[string]any)
		gg, gok := g[gid].(map[string]any)
		if wok != gok {
			out = append(out, fmt.Sprintf("guild %s: want present %v, got present %v", gid, wok, gok))
		} else {
			for _, f := range fields {
				out = append(out, diffField(gid, f, wg[f], gg[f])...)
			}
		}
		if max > 0 && len(out) >= max {
			return out[:max], nil
		}
	}
	return out, nil
}

func fieldsOf(kinds []string) ([]string, error) {
	if len(kinds) == 0 {
		return allFields, nil
	}
	want := map[string]bool{}
	for _, k := range kinds {
		f, ok := kindFields[k]
		if !ok {
			return nil, fmt.Errorf("unknown kind %q: want one of %v", k, slices.Sorted(maps.Keys(kindFields)))
		}
		for _, x := range f {
			want[x] = true
		}
	}
	return slices.DeleteFunc(slices.Clone(allFields), func(f string) bool { return !want[f] }), nil
}

func parse(b []byte) (map[string]any, error) {
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

// diffField compares one field of a guild; a kind's map (and messages' map
// of lists) is compared entry by entry so that each line names the object.
func diffField(guild, field string, want, got any) []string {
	wm, wok := want.(map[string]any)
	gm, gok := got.(map[string]any)
	switch {
	case field == "unavailable":
		if (want == true) != (got == true) {
			return []string{fmt.Sprintf("guild %s unavailable: want %v, got %v", guild, want == true, got == true)}
		}
		return nil
	case field == "guild" || (!wok && !gok && !(empty(want) && empty(got))):
		if !reflect.DeepEqual(want, got) {
			return []string{fmt.Sprintf("guild %s %s: want %s, got %s", guild, field, show(want), show(got))}
		}
		return nil
	}
	var out []string
	for _, id := range unionKeys(wm, gm) {
		if !reflect.DeepEqual(wm[id], gm[id]) && !(empty(wm[id]) && empty(gm[id])) {
			out = append(out, fmt.Sprintf("guild %s %s[%s]: want %s, got %s", guild, field, id, show(wm[id]), show(gm[id])))
		}
	}
	return out
}

// empty: absent, null, [] or {}.
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

func unionKeys(a, b map[string]any) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func show(v any) string {
	if v == nil {
		return "(absent)"
	}
	b, _ := json.Marshal(v)
	return string(b)
}
