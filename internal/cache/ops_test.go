package cache

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

var all = Config{Kinds: Guilds | Channels | Roles | Emojis | VoiceStates | Members | Presences | Messages, Messages: 50, Old: true}

// opcodes is every operation the script knows.
var opcodes = []string{opRequire, opGuild, opUnavail, opDrop, opRecon, opOld, opPut, opReplace, opDel, opClear,
	opMerge, opOldMsg, opMsg, opMsgPrune, opMsgMerge, opMsgDel}

// ops splits a change's cells into its guild and operations, failing on
// cells the script could not read.
func ops(t testing.TB, cells []string) (guild string, out [][]string) {
	t.Helper()
	if len(cells) == 0 {
		return "", nil
	}
	guild = cells[0]
	if guild != "" && !isSnowflake(guild) {
		t.Fatalf("guild cell %q is not a snowflake", guild)
	}
	for i := 1; i < len(cells); {
		if i+1 >= len(cells) || !slices.Contains(opcodes, cells[i]) {
			t.Fatalf("cells %q: no operation at %d", cells, i)
		}
		n, err := strconv.Atoi(cells[i+1])
		if err != nil || n < 0 || i+2+n > len(cells) {
			t.Fatalf("cells %q: bad argument count at %d", cells, i)
		}
		out = append(out, cells[i:i+2+n])
		i += 2 + n
	}
	return guild, out
}

func TestChangesPerDispatch(t *testing.T) {
	for _, tc := range []struct {
		t, d  string
		guild string
		want  []string // the operations, as "OP arg arg"
	}{
		{"READY", `{"guilds":[{"id":"1","unavailable":true},{"id":"2"}]}`, "", []string{"RECON 2 1 2"}},
		{"GUILD_CREATE", `{"id":"1","name":"g","channels":[{"id":"3","guild_id":"1"}],"threads":[{"id":"4"}],"roles":[],
			"members":[{"user":{"id":"5"},"roles":[]}],"voice_states":[{"user_id":"5","channel_id":"3","member":{}}],"stage_instances":[]}`, "1",
			[]string{`GUILD 1 {"id":"1","name":"g"}`, "MSGPRUNE 2 3 4", `REPLACE 5 :channels 3 {"id":"3"} 4 {"id":"4"}`, "REPLACE 1 :roles",
				"REPLACE 1 :emojis", "REPLACE 1 :stickers", `REPLACE 3 :members 5 {"user":{"id":"5"},"roles":[]}`,
				`REPLACE 3 :voice 5 {"user_id":"5","channel_id":"3"}`, "REPLACE 1 :presences"}},
		{"GUILD_CREATE", `{"id":"1","unavailable":true}`, "1", []string{"REQ 0", "UNAVAIL 0"}},
		{"GUILD_UPDATE", `{"id":"1","name":"n","roles":[]}`, "1", []string{"REQ 0", "OLD 2  guild", `MERGE 6  guild "id" "1" "name" "n"`}},
		{"GUILD_DELETE", `{"id":"1","unavailable":true}`, "1", []string{"REQ 0", "OLD 2  guild", "UNAVAIL 0"}},
		{"GUILD_DELETE", `{"id":"1"}`, "1", []string{"REQ 0", "OLD 2  guild", "DROP 0"}},
		{"CHANNEL_CREATE", `{"id":"3","guild_id":"1","name":"c"}`, "1", []string{"REQ 0", `PUT 3 :channels 3 {"id":"3","name":"c"}`}},
		{"THREAD_UPDATE", `{"id":"3","guild_id":"1"}`, "1", []string{"REQ 0", "OLD 2 :channels 3", `PUT 3 :channels 3 {"id":"3"}`}},
		{"CHANNEL_DELETE", `{"id":"3","guild_id":"1"}`, "1", []string{"REQ 0", "OLD 2 :channels 3", "DEL 2 :channels 3", "CLEAR 1 :msgs:3"}},
		{"GUILD_ROLE_UPDATE", `{"guild_id":"1","role":{"id":"6"}}`, "1", []string{"REQ 0", "OLD 2 :roles 6", `PUT 3 :roles 6 {"id":"6"}`}},
		{"GUILD_ROLE_DELETE", `{"guild_id":"1","role_id":"6"}`, "1", []string{"REQ 0", "OLD 2 :roles 6", "DEL 2 :roles 6"}},
		{"GUILD_EMOJIS_UPDATE", `{"guild_id":"1","emojis":[{"id":"7"}]}`, "1", []string{"REQ 0", `REPLACE 3 :emojis 7 {"id":"7"}`}},
		{"GUILD_STICKERS_UPDATE", `{"guild_id":"1","stickers":[]}`, "1", []string{"REQ 0", "REPLACE 1 :stickers"}},
		{"GUILD_MEMBER_ADD", `{"guild_id":"1","user":{"id":"5"}}`, "1", []string{"REQ 0", `PUT 3 :members 5 {"user":{"id":"5"}}`}},
		{"GUILD_MEMBER_UPDATE", `{"guild_id":"1","user":{"id":"5"}}`, "1", []string{"REQ 0", "OLD 2 :members 5", `MERGE 4 :members 5 "user" {"id":"5"}`}},
		{"GUILD_MEMBER_REMOVE", `{"guild_id":"1","user":{"id":"5"}}`, "1", []string{"REQ 0", "OLD 2 :members 5", "DEL 2 :members 5"}},
		{"GUILD_MEMBERS_CHUNK", `{"guild_id":"1","members":[{"user":{"id":"5"}}],"presences":[{"user":{"id":"5"},"status":"idle"}]}`, "1",
			[]string{"REQ 0", `PUT 3 :members 5 {"user":{"id":"5"}}`, `PUT 3 :presences 5 {"user":{"id":"5"},"status":"idle"}`}},
		{"VOICE_STATE_UPDATE", `{"guild_id":"1","user_id":"5","channel_id":"3","member":{}}`, "1",
			[]string{"REQ 0", "OLD 2 :voice 5", `PUT 3 :voice 5 {"user_id":"5","channel_id":"3"}`}},
		{"VOICE_STATE_UPDATE", `{"guild_id":"1","user_id":"5","channel_id":null}`, "1", []string{"REQ 0", "OLD 2 :voice 5", "DEL 2 :voice 5"}},
		{"PRESENCE_UPDATE", `{"guild_id":"1","user":{"id":"5"},"status":"dnd"}`, "1",
			[]string{"REQ 0", "OLD 2 :presences 5", `PUT 3 :presences 5 {"user":{"id":"5"},"status":"dnd"}`}},
		{"MESSAGE_CREATE", `{"id":"8","channel_id":"3","guild_id":"1"}`, "1", []string{"REQ 0", `MSG 3 3 {"id":"8","channel_id":"3"} 50`}},
		{"MESSAGE_UPDATE", `{"id":"8","channel_id":"3","guild_id":"1","content":"x"}`, "1",
			[]string{"REQ 0", "OLDMSG 2 3 8", `MSGMERGE 8 3 8 "channel_id" "3" "content" "x" "id" "8"`}},
		{"MESSAGE_DELETE", `{"id":"8","channel_id":"3","guild_id":"1"}`, "1", []string{"REQ 0", "OLDMSG 2 3 8", "MSGDEL 2 3 8"}},
		{"MESSAGE_DELETE_BULK", `{"ids":["8","9"],"channel_id":"3","guild_id":"1"}`, "1", []string{"REQ 0", "MSGDEL 3 3 8 9"}},
	} {
		t.Run(tc.t, func(t *testing.T) {
			guild, got := ops(t, all.Changes(tc.t, []byte(tc.d)))
			if guild != tc.guild {
				t.Fatalf("guild %q, want %q", guild, tc.guild)
			}
			var lines []string
			for _, op := range got {
				if op[0] == opMerge || op[0] == opMsgMerge { // map order: sort the pairs
					op = sortPairs(op, 4)
				}
				lines = append(lines, strings.Join(op, " "))
			}
			if !slices.Equal(lines, tc.want) {
				t.Fatalf("operations:\n got %q\nwant %q", lines, tc.want)
			}
		})
	}
}

// sortPairs sorts op's merge pairs, which start at from.
func sortPairs(op []string, from int) []string {
	if from > len(op) || (len(op)-from)%2 != 0 {
		return op
	}
	type pair struct{ k, v string }
	var ps []pair
	for i := from; i < len(op); i += 2 {
		ps = append(ps, pair{op[i], op[i+1]})
	}
	slices.SortFunc(ps, func(a, b pair) int { return strings.Compare(a.k, b.k) })
	out := slices.Clone(op[:from])
	for _, p := range ps {
		out = append(out, p.k, p.v)
	}
	return out
}

// TestChangesStoreCompactJSON: what Discord sends with white space, or
// escapes, is stored compact and keyed by its unescaped ID.
func TestChangesStoreCompactJSON(t *testing.T) {
	_, got := ops(t, all.Changes("CHANNEL_CREATE", []byte(` { "id" : "3", "guild_id":"1" , "name":"a\"b \u00e9", "x": [ 1, {"y": null} ] } `)))
	want := `PUT 3 :channels 3 {"id":"3","name":"a\"b \u00e9","x":[1,{"y":null}]}`
	if len(got) != 2 || strings.Join(got[1], " ") != want {
		t.Fatalf("operations %q, want REQ then %s", got, want)
	}
	if got := all.Changes("CHANNEL_CREATE", []byte(`{"\u0069d":"3","guild_id":"1"}`)); got == nil {
		t.Fatal("an escaped key was not read")
	}
}

// TestChangesOnlyForKeptKinds: a dispatch of a kind not kept, of no
// interest, of a DM, or not what Discord sends changes nothing.
func TestChangesOnlyForKeptKinds(t *testing.T) {
	guildsOnly := Config{Kinds: Guilds}
	for _, tc := range []struct {
		cfg  Config
		t, d string
	}{
		{guildsOnly, "CHANNEL_CREATE", `{"id":"3","guild_id":"1"}`},
		{guildsOnly, "MESSAGE_CREATE", `{"id":"8","channel_id":"3","guild_id":"1"}`},
		{Config{}, "GUILD_CREATE", `{"id":"1"}`},
		{all, "TYPING_START", `{"channel_id":"3"}`},
		{all, "MESSAGE_CREATE", `{"id":"8","channel_id":"3"}`},
		{all, "CHANNEL_CREATE", `{"id":"../x","guild_id":"1"}`},
		{all, "GUILD_CREATE", `{"id":"1","members":[{"user":{}}]}`},
		{all, "GUILD_ROLE_CREATE", `[]`},
		{all, "GUILD_MEMBER_ADD", `null`},
	} {
		if got := tc.cfg.Changes(tc.t, []byte(tc.d)); got != nil {
			t.Errorf("%s %s with %v: %q, want no change", tc.t, tc.d, tc.cfg.Kinds, got)
		}
	}
	if got := (Config{Kinds: Guilds}).Changes("GUILD_CREATE", []byte(`{"id":"1","channels":[{"id":"3"}]}`)); len(got) != 4 {
		t.Errorf("GUILD_CREATE keeping guilds only: %q, want the guild alone", got)
	}
	if got := (Config{Kinds: all.Kinds, Messages: 5}).Changes("CHANNEL_UPDATE", []byte(`{"id":"3","guild_id":"1"}`)); slices.Contains(got, opOld) {
		t.Errorf("without Old, CHANNEL_UPDATE reads the old channel: %q", got)
	}
}

// TestLuaKnowsEveryOperation: each opcode Go sends has its branch in the script.
func TestLuaKnowsEveryOperation(t *testing.T) {
	for _, op := range opcodes {
		if !strings.Contains(Lua, "op == '"+op+"'") {
			t.Errorf("the script has no branch for %s", op)
		}
	}
	if strings.Contains(Lua, "$") {
		t.Error("the script has a placeholder left")
	}
}

func TestParseKinds(t *testing.T) {
	for in, want := range map[string]Kinds{
		"none": 0, "guilds": Guilds, " guilds , channels,messages": Guilds | Channels | Messages,
		"guilds,channels,roles,emojis,voice_states,members,presences,messages": all.Kinds,
	} {
		got, err := ParseKinds(in)
		if err != nil || got != want {
			t.Errorf("ParseKinds(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "guild", "channels", "guilds,messages", "guilds,,roles"} {
		if _, err := ParseKinds(in); err == nil {
			t.Errorf("ParseKinds(%q) accepted", in)
		}
	}
	if s := all.Kinds.String(); s != "guilds,channels,roles,emojis,voice_states,members,presences,messages" {
		t.Errorf("String = %q", s)
	}
	if k, err := ParseKinds(Kinds(0).String()); err != nil || k != 0 {
		t.Errorf("none does not round-trip: %v %v", k, err)
	}
}

func TestDefaultKindsFollowIntents(t *testing.T) {
	for _, tc := range []struct {
		intents gateway.Intents
		want    Kinds
	}{
		{0, 0},
		{gateway.IntentsNonPrivileged, Guilds | Channels | Roles | Emojis | VoiceStates},
		{gateway.IntentGuilds | gateway.IntentGuildMembers | gateway.IntentGuildPresences, Guilds | Channels | Roles | Members | Presences},
	} {
		if got := DefaultKinds(tc.intents); got != tc.want {
			t.Errorf("DefaultKinds(%d) = %v, want %v", tc.intents, got, tc.want)
		}
	}
}
