package gatewaytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/disgoorg/snowflake/v2"
)

// testWorld is a small world with every kind.
var testWorld = World{Seed: 7, Channels: 6, Threads: 2, Roles: 3, Emojis: 2, Stickers: 2, Members: 6,
	VoiceStates: 2, Presences: 3, Messages: 3}

// watcher is a client that keeps a State from the dispatches it receives,
// by ApplyDispatch, and checks that each has Discord's shape.
type watcher struct {
	t    *testing.T
	s    *Server
	c    *client
	st   *State
	seen map[string]int // dispatches received per type
}

func watch(t *testing.T, s *Server, shardID, count int) (*watcher, readyInfo) {
	t.Helper()
	w := &watcher{t: t, s: s, c: connect(t, s), st: NewState(s.Config().World.Messages), seen: map[string]int{}}
	w.c.send(identifyPayload(s.Token(), shardID, count, nil))
	env := w.c.nextOp(0, "READY")
	var r readyInfo
	if err := json.Unmarshal(env.D, &r); err != nil {
		t.Fatal(err)
	}
	w.apply(env)
	w.sync()
	return w, r
}

func (w *watcher) apply(env envelope) {
	w.t.Helper()
	checkShape(w.t, env.typ(), env.D)
	if err := ApplyDispatch(w.st, env.typ(), env.D); err != nil {
		w.t.Fatalf("%s %s: %v", env.typ(), env.D, err)
	}
	w.seen[env.typ()]++
}

// sync reads and applies every dispatch up to a marker the fake sends now.
func (w *watcher) sync() {
	w.t.Helper()
	if w.s.Dispatch("FAKE_MARK", 0, json.RawMessage(`{}`)) == 0 {
		w.t.Fatal("no session for the marker")
	}
	for {
		env := w.c.next()
		if env.Op != 0 {
			continue
		}
		if env.typ() == "FAKE_MARK" {
			return
		}
		w.apply(env)
	}
}

// same checks that the watcher's state equals the fake's ground truth,
// from State and from GET /_fake/state.
func (w *watcher) same() {
	w.t.Helper()
	var viaHTTP State
	if code := getJSON(w.t, w.s.URL()+"/_fake/state", "", &viaHTTP); code != http.StatusOK {
		w.t.Fatalf("GET /_fake/state: %d", code)
	}
	for _, truth := range []*State{w.s.State(), &viaHTTP} {
		if diff := Diff(truth, w.st, 10); len(diff) > 0 {
			w.t.Fatalf("state built from the dispatches differs from the ground truth:\n%s", strings.Join(diff, "\n"))
		}
	}
}

// shapes lists, per dispatch type, fields Discord always sends (a.b: b of object a).
var shapes = map[string][]string{
	"GUILD_CREATE":          {"id", "name", "owner_id", "joined_at", "large", "member_count", "channels", "threads", "roles", "emojis", "stickers", "members", "voice_states", "presences"},
	"GUILD_UPDATE":          {"id", "name", "owner_id"},
	"GUILD_DELETE":          {"id"},
	"CHANNEL_CREATE":        {"id", "type", "guild_id", "name", "position", "permission_overwrites"},
	"CHANNEL_UPDATE":        {"id", "type", "guild_id", "name", "position", "permission_overwrites"},
	"CHANNEL_DELETE":        {"id", "type", "guild_id", "name"},
	"THREAD_CREATE":         {"id", "type", "guild_id", "parent_id", "name", "thread_metadata.archived"},
	"THREAD_UPDATE":         {"id", "type", "guild_id", "parent_id", "name", "thread_metadata.archived"},
	"THREAD_DELETE":         {"id", "type", "guild_id", "parent_id"},
	"GUILD_ROLE_CREATE":     {"guild_id", "role.id", "role.name", "role.permissions", "role.position"},
	"GUILD_ROLE_UPDATE":     {"guild_id", "role.id", "role.name", "role.permissions", "role.position"},
	"GUILD_ROLE_DELETE":     {"guild_id", "role_id"},
	"GUILD_EMOJIS_UPDATE":   {"guild_id", "emojis"},
	"GUILD_STICKERS_UPDATE": {"guild_id", "stickers"},
	"GUILD_MEMBER_ADD":      {"guild_id", "user.id", "user.username", "roles", "joined_at"},
	"GUILD_MEMBER_UPDATE":   {"guild_id", "user.id", "roles", "joined_at"},
	"GUILD_MEMBER_REMOVE":   {"guild_id", "user.id"},
	"VOICE_STATE_UPDATE":    {"guild_id", "user_id", "session_id", "member.user.id", "self_mute"},
	"PRESENCE_UPDATE":       {"guild_id", "user.id", "status", "activities", "client_status"},
	"MESSAGE_CREATE":        {"id", "channel_id", "guild_id", "author.id", "content", "timestamp"},
	"MESSAGE_UPDATE":        {"id", "channel_id", "guild_id"},
	"MESSAGE_DELETE":        {"id", "channel_id", "guild_id"},
	"MESSAGE_DELETE_BULK":   {"ids", "channel_id", "guild_id"},
}

var decimal = regexp.MustCompile(`^[0-9]+$`)

// checkShape checks a dispatch's required fields, and everywhere in it that
// ids and permissions are decimal strings (snowflakes are never numbers).
func checkShape(t *testing.T, typ string, d json.RawMessage) {
	t.Helper()
	var obj Object
	if err := json.Unmarshal(d, &obj); err != nil {
		t.Fatalf("%s: d %s: %v", typ, d, err)
	}
	for _, path := range shapes[typ] {
		var v any = obj
		for _, part := range strings.Split(path, ".") {
			o, _ := v.(map[string]any)
			var ok bool
			if v, ok = o[part]; !ok {
				t.Fatalf("%s without %s: %s", typ, path, d)
			}
		}
	}
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, y := range x {
				walk(k, y)
			}
		case []any:
			for _, y := range x {
				walk(key, y)
			}
		case string:
		case nil:
		default:
			if key == "id" || strings.HasSuffix(key, "_id") || key == "ids" || key == "permissions" || key == "allow" || key == "deny" {
				t.Fatalf("%s: %s is %v, want a decimal string: %s", typ, key, x, d)
			}
			return
		}
		if s, ok := v.(string); ok && (key == "permissions" || key == "allow" || key == "deny") && !decimal.MatchString(s) {
			t.Fatalf("%s: %s %q is not decimal", typ, key, s)
		}
	}
	walk("", obj)
}

// change applies a change through the control API and returns its object.
func change(t *testing.T, s *Server, kind ChangeKind, body m) Object {
	t.Helper()
	obj, code, errMsg := postChange(t, s, string(kind), body)
	if code != http.StatusOK {
		t.Fatalf("POST /_fake/world/%s %v: %d %s", kind, body, code, errMsg)
	}
	return obj
}

func postChange(t *testing.T, s *Server, kind string, body any) (Object, int, string) {
	t.Helper()
	b, ok := body.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := noKeepAlive.Post(s.URL()+"/_fake/world/"+kind, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Object Object `json:"object"`
		Error  string `json:"error"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("POST /_fake/world/%s: %s: %v", kind, raw, err)
	}
	return out.Object, resp.StatusCode, out.Error
}

// find returns the id of the first object of kind (by id) that ok accepts.
func find(t *testing.T, kind map[string]Object, ok func(Object) bool) string {
	t.Helper()
	for _, id := range sortedKeys(kind) {
		if ok(kind[id]) {
			return id
		}
	}
	t.Fatal("no such object in the world")
	return ""
}

func typeIs(typ int) func(Object) bool { return func(o Object) bool { return channelType(o) == typ } }
func anyObject(Object) bool            { return true }

// TestWorldEveryChange applies every kind of change through the control API
// to a live session and checks each dispatch's shape and that the
// dispatches, applied by the contract's rules, give exactly the ground truth.
func TestWorldEveryChange(t *testing.T) {
	s := startFake(t, WithGuilds(2), WithWorld(testWorld))
	w, r := watch(t, s, 0, 1)
	if len(r.Guilds) != 2 || w.seen["GUILD_CREATE"] != 2 {
		t.Fatalf("READY with %d guilds, %d GUILD_CREATE; want 2 and 2", len(r.Guilds), w.seen["GUILD_CREATE"])
	}
	w.same()
	ids := s.GuildIDs()
	g, other := ids[0].String(), ids[1].String()
	gs := w.st.Guilds[g]
	if len(gs.Channels) != 1+6+2 || len(gs.Roles) != 1+3 || len(gs.Members) != 6 || len(gs.VoiceStates) != 2 ||
		len(gs.Presences) != 3 || len(gs.Emojis) != 2 || len(gs.Stickers) != 2 {
		t.Fatalf("GUILD_CREATE holds %d channels, %d roles, %d members, %d voice, %d presences, %d emojis, %d stickers",
			len(gs.Channels), len(gs.Roles), len(gs.Members), len(gs.VoiceStates), len(gs.Presences), len(gs.Emojis), len(gs.Stickers))
	}
	if gs.Roles[g]["name"] != "@everyone" || gs.Guild["member_count"] != 6.0 {
		t.Fatalf("guild %v, @everyone %v", gs.Guild, gs.Roles[g])
	}

	text := change(t, s, ChannelCreate, m{"guild_id": g, "fields": m{"type": 0, "topic": "news"}})["id"]
	cat := change(t, s, ChannelCreate, m{"guild_id": g, "fields": m{"type": 4}})["id"]
	voice := change(t, s, ChannelCreate, m{"guild_id": g, "channel_id": cat, "fields": m{"type": 2}})["id"]
	change(t, s, ChannelUpdate, m{"guild_id": g, "id": text, "fields": m{"name": "renamed"}})
	thread := change(t, s, ThreadCreate, m{"guild_id": g, "channel_id": text})["id"]
	change(t, s, ThreadUpdate, m{"guild_id": g, "id": thread, "fields": m{"name": "thread renamed"}})
	role := change(t, s, RoleCreate, m{"guild_id": g, "fields": m{"name": "mods", "permissions": "8"}})["id"]
	change(t, s, RoleUpdate, m{"guild_id": g, "id": role, "fields": m{"color": 255}})
	user := change(t, s, MemberAdd, m{"guild_id": g})["user"].(map[string]any)["id"]
	change(t, s, MemberUpdate, m{"guild_id": g, "user_id": user, "fields": m{"nick": "n", "roles": []any{role}}})
	change(t, s, Voice, m{"guild_id": g, "user_id": user, "channel_id": voice})
	otherVoice := find(t, gs.Channels, typeIs(chanVoice))
	change(t, s, Voice, m{"guild_id": g, "user_id": user, "channel_id": otherVoice, "fields": m{"self_mute": true}})
	change(t, s, Presence, m{"guild_id": g, "user_id": user, "fields": m{"status": "dnd"}})
	emoji := change(t, s, EmojisUpdate, m{"guild_id": g, "fields": m{"name": "new"}})["id"]
	change(t, s, EmojisUpdate, m{"guild_id": g, "id": emoji, "fields": m{"name": "newer"}})
	change(t, s, EmojisUpdate, m{"guild_id": g, "ids": []string{find(t, gs.Emojis, anyObject)}})
	sticker := change(t, s, StickersUpdate, m{"guild_id": g, "fields": m{}})["id"]
	change(t, s, StickersUpdate, m{"guild_id": g, "id": sticker, "fields": m{"name": "st"}, "ids": []string{find(t, gs.Stickers, anyObject)}})
	var msgs []any
	for range 5 { // 5 messages, 3 kept
		msgs = append(msgs, change(t, s, MessageCreate, m{"guild_id": g, "channel_id": text, "user_id": user})["id"])
	}
	change(t, s, MessageCreate, m{"guild_id": g, "channel_id": thread})
	change(t, s, MessageUpdate, m{"guild_id": g, "channel_id": text, "id": msgs[3], "fields": m{"content": "edited"}})
	change(t, s, MessageDelete, m{"guild_id": g, "channel_id": text, "id": msgs[4]})
	change(t, s, MessageDeleteBulk, m{"guild_id": g, "channel_id": text, "ids": []any{msgs[0], msgs[2]}})
	change(t, s, GuildUpdate, m{"guild_id": g, "fields": m{"name": "renamed guild", "description": "d"}})
	w.sync()
	w.same()
	if got := w.st.Guilds[g].Messages[text.(string)]; len(got) != 1 || got[0]["content"] != "edited" {
		t.Fatalf("messages of %s: %v, want the edited one only", text, got)
	}

	change(t, s, Voice, m{"guild_id": g, "user_id": find(t, gs.VoiceStates, anyObject)}) // leave
	change(t, s, RoleDelete, m{"guild_id": g, "id": role})                               // a member has it: GUILD_MEMBER_UPDATE first
	change(t, s, ChannelDelete, m{"guild_id": g, "id": text})                            // its thread goes first
	change(t, s, ThreadDelete, m{"guild_id": g, "id": find(t, gs.Channels, isThread)})
	change(t, s, ChannelDelete, m{"guild_id": g, "id": otherVoice}) // the member leaves voice first
	change(t, s, ChannelDelete, m{"guild_id": g, "id": cat})        // its voice channel loses its parent
	change(t, s, MemberRemove, m{"guild_id": g, "user_id": user})
	change(t, s, GuildUnavailable, m{"guild_id": other})
	w.sync()
	w.same()
	if !w.st.Guilds[other].Unavailable {
		t.Fatal("the guild is not unavailable after GUILD_DELETE unavailable")
	}
	change(t, s, GuildAvailable, m{"guild_id": other})
	change(t, s, GuildLeave, m{"guild_id": other})
	w.sync()
	w.same()
	if _, ok := w.st.Guilds[other]; ok || len(s.GuildIDs()) != 1 {
		t.Fatalf("the guild the bot left is still there (guilds %v)", s.GuildIDs())
	}
	if n := s.Dispatch("MESSAGE_CREATE", ids[1], MessageCreateData(ids[1], 1)); n != 0 {
		t.Fatalf("a dispatch of the guild the bot left reached %d sessions", n)
	}
	if w.st.Guilds[g].Channels[voice.(string)]["parent_id"] != nil {
		t.Fatal("the deleted category's voice channel kept its parent")
	}
	for _, typ := range sortedKeys(shapes) {
		if w.seen[typ] == 0 {
			t.Errorf("no %s received", typ)
		}
	}
}

// TestWorldWhileDisconnected: changes made while the shard has no
// connection are replayed on RESUME; changes made while it has no session
// at all (the bot leaves a guild, a guild goes down) show in the next
// READY: the left guild is not listed (a cache drops it), the unavailable
// one gets GUILD_DELETE unavailable, the others GUILD_CREATE as they are now.
func TestWorldWhileDisconnected(t *testing.T) {
	s := startFake(t, WithGuilds(4), WithWorld(testWorld), WithIdentifyWindow(0))
	w, r := watch(t, s, 0, 1)
	ids := s.GuildIDs()
	g := ids[0].String()
	gs := s.State().Guilds[g]

	// Resumable: the changes are buffered and replayed.
	if s.DropConnections(0) != 1 {
		t.Fatal("no connection to drop")
	}
	if _, err := w.c.read(); err == nil {
		t.Fatal("the connection survived a drop")
	}
	seq := w.lastSeq(s, r.SessionID)
	mustChange(t, s, Change{Kind: RoleCreate, Guild: ids[0], Fields: Object{"name": "while down"}})
	mustChange(t, s, Change{Kind: MemberRemove, Guild: ids[0], User: snowflake.MustParse(find(t, gs.Members, anyObject))})
	w.c = connect(t, s)
	w.c.send(resumePayload(s.Token(), r.SessionID, seq))
	for {
		env := w.c.next()
		if env.typ() == "RESUMED" {
			break
		}
		w.apply(env)
	}
	w.sync()
	w.same()

	// No session: the world changes all the same; the next READY shows it.
	if s.InvalidateSession(0, false) != 1 {
		t.Fatal("no session to invalidate")
	}
	w.c.nextOp(9, "")
	mustChange(t, s, Change{Kind: GuildLeave, Guild: ids[1]})
	mustChange(t, s, Change{Kind: GuildUnavailable, Guild: ids[2]})
	if vc := mustChange(t, s, Change{Kind: ChannelCreate, Guild: ids[3], Fields: Object{"type": chanVoice}}); vc["bitrate"] == nil {
		t.Fatalf("type 2 written as a Go int made %v, want a voice channel", vc) // as Go callers write it
	}
	w.c.send(identifyPayload(s.Token(), 0, 1, nil))
	env := w.c.nextOp(0, "READY")
	var again readyInfo
	if err := json.Unmarshal(env.D, &again); err != nil {
		t.Fatal(err)
	}
	if len(again.Guilds) != 3 || slices.ContainsFunc(again.Guilds, func(x struct {
		ID          string `json:"id"`
		Unavailable bool   `json:"unavailable"`
	}) bool {
		return x.ID == ids[1].String()
	}) {
		t.Fatalf("READY lists %v; want 3 guilds, without the one the bot left", again.Guilds)
	}
	w.apply(env)
	w.sync()
	w.same()
	if w.seen["GUILD_DELETE"] != 1 || !w.st.Guilds[ids[2].String()].Unavailable {
		t.Fatalf("%d GUILD_DELETE; the unavailable guild: %+v", w.seen["GUILD_DELETE"], w.st.Guilds[ids[2].String()])
	}
}

// lastSeq is the last seq the fake gave the session.
func (w *watcher) lastSeq(s *Server, sessionID string) int {
	ev := s.SentEvents(sessionID)
	return ev[len(ev)-1].Seq
}

func mustChange(t *testing.T, s *Server, ch Change) Object {
	t.Helper()
	obj, err := s.Change(ch)
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

// TestWorldMutate: random changes of every kind reach the session and give
// the ground truth; the same seed on the same world draws the same changes.
func TestWorldMutate(t *testing.T) {
	s := startFake(t, WithGuilds(3), WithWorld(testWorld))
	w, _ := watch(t, s, 0, 1)
	if n := s.Mutate(rand.New(rand.NewPCG(1, 2)), 300); n != 300 {
		t.Fatalf("Mutate applied %d of 300", n)
	}
	var applied map[string]int
	resp, err := noKeepAlive.Post(s.URL()+"/_fake/world/mutate?n=50&seed=9", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&applied)
	resp.Body.Close()
	if err != nil || applied["applied"] != 50 {
		t.Fatalf("POST /_fake/world/mutate: %v %v", applied, err)
	}
	w.sync()
	w.same()
	for _, typ := range []string{"CHANNEL_CREATE", "CHANNEL_DELETE", "THREAD_UPDATE", "GUILD_ROLE_DELETE", "GUILD_EMOJIS_UPDATE",
		"GUILD_MEMBER_ADD", "GUILD_MEMBER_REMOVE", "VOICE_STATE_UPDATE", "PRESENCE_UPDATE", "MESSAGE_CREATE", "MESSAGE_DELETE_BULK"} {
		if w.seen[typ] == 0 {
			t.Errorf("300 random changes sent no %s (seen %v)", typ, w.seen)
		}
	}

	twin := startFake(t, WithGuilds(3), WithWorld(testWorld))
	twin.Mutate(rand.New(rand.NewPCG(1, 2)), 300)
	twin.Mutate(rand.New(rand.NewPCG(9, 9)), 50)
	if diff := Diff(s.State(), twin.State(), 5); len(diff) > 0 {
		t.Fatalf("the same seeds gave different worlds:\n%s", strings.Join(diff, "\n"))
	}
}

// TestWorldMutationsPerSecond: the steady background of changes flows until
// stopped, and what the session received is then the ground truth.
func TestWorldMutationsPerSecond(t *testing.T) {
	s := startFake(t, WithGuilds(2), WithWorld(testWorld), WithMutationsPerSecond(500))
	w, _ := watch(t, s, 0, 1)
	poll(t, "steady changes", func() bool {
		w.sync()
		return len(w.seen) > 5
	})
	resp, err := noKeepAlive.Post(s.URL()+"/_fake/world/mutations-per-second?rate=0", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s.MutationsPerSecond() != 0 {
		t.Fatalf("rate %v after setting 0", s.MutationsPerSecond())
	}
	// A change in flight when the rate dropped may land after the first marker.
	poll(t, "the state to settle", func() bool {
		w.sync()
		return len(Diff(s.State(), w.st, 1)) == 0
	})
}

// TestWorldMembersChunk: op 8 answers from the world's members.
func TestWorldMembersChunk(t *testing.T) {
	s := startFake(t, WithGuilds(1), WithWorld(World{Members: 2*membersPerChunk + 1, Presences: 10}))
	w, _ := watch(t, s, 0, 1)
	g := s.GuildIDs()[0].String()
	w.c.send(m{"op": 8, "d": m{"guild_id": g, "query": "", "limit": 0, "presences": true, "nonce": "all"}})
	got := &State{Guilds: map[string]*GuildState{g: {}}} // held, as after its GUILD_CREATE: chunks change only held guilds
	for i := range 3 {
		env := w.c.nextOp(0, "GUILD_MEMBERS_CHUNK")
		var chunk struct {
			ChunkIndex int `json:"chunk_index"`
			ChunkCount int `json:"chunk_count"`
		}
		if err := json.Unmarshal(env.D, &chunk); err != nil || chunk.ChunkIndex != i || chunk.ChunkCount != 3 {
			t.Fatalf("chunk %d: index %d of %d (%v)", i, chunk.ChunkIndex, chunk.ChunkCount, err)
		}
		if err := ApplyDispatch(got, "GUILD_MEMBERS_CHUNK", env.D); err != nil {
			t.Fatal(err)
		}
	}
	truth := s.State().Guilds[g]
	if diff := Diff(&State{Guilds: map[string]*GuildState{g: {Members: truth.Members, Presences: truth.Presences}}},
		&State{Guilds: map[string]*GuildState{g: {Members: got.Guilds[g].Members, Presences: got.Guilds[g].Presences}}}, 5); len(diff) > 0 {
		t.Fatalf("chunks differ from the world's members:\n%s", strings.Join(diff, "\n"))
	}
	member := find(t, truth.Members, anyObject)
	w.c.send(m{"op": 8, "d": m{"guild_id": g, "user_ids": []string{member, "42"}, "nonce": "ids"}})
	env := w.c.nextOp(0, "GUILD_MEMBERS_CHUNK")
	var byID struct {
		Members  []Object `json:"members"`
		NotFound []string `json:"not_found"`
	}
	if err := json.Unmarshal(env.D, &byID); err != nil || len(byID.Members) != 1 || userIDOf(byID.Members[0]) != member ||
		!slices.Equal(byID.NotFound, []string{"42"}) {
		t.Fatalf("by user_ids: %s (%v)", env.D, err)
	}
}

// TestWorldDefaultGuildsUnchanged: without a World, GUILD_CREATE is the
// fake's fixed payload, byte for byte, until a change touches that guild;
// the state has every guild all the same.
func TestWorldDefaultGuildsUnchanged(t *testing.T) {
	s := startFake(t, WithGuilds(3))
	ids := s.GuildIDs()
	mustChange(t, s, Change{Kind: RoleCreate, Guild: ids[0], Fields: Object{}})
	c := connect(t, s)
	c.send(identifyPayload(s.Token(), 0, 1, nil))
	c.nextOp(0, "READY")
	st := NewState(0)
	for i := range 3 {
		env := c.nextOp(0, "GUILD_CREATE")
		if i > 0 && !bytes.Equal(env.D, guildCreateData(i, ids[i])) {
			t.Fatalf("guild %d: GUILD_CREATE %s, want the fixed payload", i, env.D)
		}
		if i == 0 && bytes.Equal(env.D, guildCreateData(i, ids[i])) {
			t.Fatal("the changed guild's GUILD_CREATE does not show the change")
		}
		if err := ApplyDispatch(st, "GUILD_CREATE", env.D); err != nil {
			t.Fatal(err)
		}
	}
	if diff := Diff(s.State(), st, 5); len(diff) > 0 {
		t.Fatalf("%s", strings.Join(diff, "\n"))
	}
}

// TestWorldControlErrors: invalid changes are refused with 400 and change nothing.
func TestWorldControlErrors(t *testing.T) {
	s := startFake(t, WithGuilds(2), WithWorld(testWorld))
	ids := s.GuildIDs()
	g := ids[0].String()
	before := s.State()
	mustChange(t, s, Change{Kind: GuildUnavailable, Guild: ids[1]})
	for _, tc := range []struct {
		kind string
		body any
		want string
	}{
		{"no-such-change", m{"guild_id": g}, "unknown change"},
		{"role-create", m{}, "guild_id: required"},
		{"role-create", m{"guild_id": g, "extra": 1}, "unknown field"},
		{"role-create", `{"guild_id":"1"}{}`, "body"},
		{"role-create", m{"guild_id": "1"}, "not in this guild"},
		{"role-create", m{"guild_id": g, "fields": m{"id": "1"}}, `may not set "id"`},
		{"role-update", m{"guild_id": g, "id": "1"}, "no role 1"},
		{"role-delete", m{"guild_id": g, "id": g}, "@everyone"},
		{"channel-create", m{"guild_id": g, "fields": m{"type": 11}}, "fields.type"},
		{"thread-create", m{"guild_id": g, "channel_id": g}, "no text channel"},
		{"member-update", m{"guild_id": g, "user_id": "5"}, "no member 5"},
		{"voice", m{"guild_id": g, "user_id": find(t, before.Guilds[g].Members, anyObject), "channel_id": find(t, before.Guilds[g].Channels, typeIs(chanText))}, "not a voice channel"},
		{"guild-update", m{"guild_id": g, "fields": m{"roles": []any{}}}, `may not set "roles"`},
		{"guild-available", m{"guild_id": g}, "is available"},
		{"role-create", m{"guild_id": ids[1].String()}, "unavailable"},
		{"message-delete-bulk", m{"guild_id": g, "channel_id": find(t, before.Guilds[g].Channels, typeIs(chanText))}, "ids: required"},
	} {
		body := tc.body
		if raw, ok := body.(string); ok {
			body = []byte(raw)
		}
		_, code, msg := postChange(t, s, tc.kind, body)
		if code != http.StatusBadRequest || !strings.Contains(msg, tc.want) {
			t.Errorf("%s %v: %d %q, want 400 with %q", tc.kind, tc.body, code, msg, tc.want)
		}
	}
	for _, q := range []string{"n=x&seed=1", "n=-1&seed=1", "n=1", "n=1&seed=-1"} {
		resp, err := noKeepAlive.Post(s.URL()+"/_fake/world/mutate?"+q, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("mutate?%s: %d, want 400", q, resp.StatusCode)
		}
	}
	after := s.State()
	after.Guilds[ids[1].String()].Unavailable = false
	if diff := Diff(before, after, 5); len(diff) > 0 {
		t.Fatalf("refused changes changed the world:\n%s", strings.Join(diff, "\n"))
	}
}

// FuzzWorldChange feeds arbitrary control bodies to the change decoder:
// it never panics, and what it accepts names a known kind and a guild.
func FuzzWorldChange(f *testing.F) {
	for _, seed := range []string{`{"guild_id":"1"}`, `{"guild_id":"1","id":"2","fields":{"name":"x"}}`,
		`{"guild_id":"1","ids":["1","2"]}`, `{"guild_id":1}`, `{"guild_id":"-1"}`, `null`, `[]`, `{"fields":[]}`,
		`{"guild_id":"1"} {}`, `{"guild_id":"18446744073709551616"}`} {
		f.Add("role-create", []byte(seed))
	}
	f.Fuzz(func(t *testing.T, kind string, body []byte) {
		ch, err := decodeChange(kind, body)
		if err != nil {
			return
		}
		if changers[ch.Kind] == nil || ch.Guild == 0 {
			t.Fatalf("accepted %q %q as %+v", kind, body, ch)
		}
	})
}

// TestApplyDispatchRules checks each rule of the contract on hand-written
// states, independently of the fake's world.
func TestApplyDispatchRules(t *testing.T) {
	base := func() *State {
		st := NewState(2)
		must := func(typ, d string) {
			if err := ApplyDispatch(st, typ, json.RawMessage(d)); err != nil {
				t.Fatal(err)
			}
		}
		must("GUILD_CREATE", `{"id":"4194304","name":"g","unavailable":false,"member_count":2,
			"channels":[{"id":"10","type":0}],"threads":[{"id":"11","type":11,"parent_id":"10","guild_id":"4194304"}],
			"roles":[{"id":"4194304","name":"@everyone","permissions":"1"}],"emojis":[{"id":"20","name":"e"}],
			"stickers":[{"id":"21","name":"s"}],"members":[{"user":{"id":"30"},"roles":[]}],
			"voice_states":[{"user_id":"30","channel_id":"12","member":{"user":{"id":"30"}}}],
			"presences":[{"user":{"id":"30"},"status":"online"}],"stage_instances":[]}`)
		must("GUILD_CREATE", `{"id":"8388608","name":"other"}`)
		must("MESSAGE_CREATE", `{"id":"40","channel_id":"10","guild_id":"4194304","content":"a"}`)
		return st
	}
	gs := func(st *State) *GuildState { return st.Guilds["4194304"] }
	for _, tc := range []struct {
		typ, d string
		check  func(*State) bool
	}{
		{"GUILD_UPDATE", `{"id":"4194304"}`, func(st *State) bool { // what base's GUILD_CREATE kept
			g := gs(st)
			return len(g.Channels) == 2 && g.Channels["11"]["guild_id"] == nil && g.VoiceStates["30"]["member"] == nil &&
				g.Guild["channels"] == nil && g.Guild["stage_instances"] == nil && g.Guild["member_count"] == 2.0 &&
				len(g.Roles) == 1 && len(g.Emojis) == 1 && len(g.Stickers) == 1 && len(g.Members) == 1 && len(g.Presences) == 1
		}},
		{"READY", `{"guilds":[{"id":"8388608","unavailable":true}],"shard":[0,1]}`, func(st *State) bool {
			return gs(st) == nil && st.Guilds["8388608"] != nil
		}},
		{"READY", `{"guilds":[],"shard":[1,2]}`, func(st *State) bool { // 4194304>>22 = 1: shard 1 of 2
			return gs(st) == nil && st.Guilds["8388608"] != nil
		}},
		{"GUILD_CREATE", `{"id":"4194304","name":"again","channels":[{"id":"10","type":0}]}`, func(st *State) bool {
			return gs(st).Guild["name"] == "again" && len(gs(st).Roles) == 0 && len(gs(st).Messages["10"]) == 1
		}},
		{"GUILD_CREATE", `{"id":"4194304","name":"again","channels":[]}`, func(st *State) bool {
			return len(gs(st).Messages) == 0
		}},
		{"GUILD_UPDATE", `{"id":"4194304","name":"new","roles":[]}`, func(st *State) bool {
			return gs(st).Guild["name"] == "new" && gs(st).Guild["member_count"] == 2.0 && gs(st).Guild["roles"] == nil
		}},
		{"GUILD_DELETE", `{"id":"4194304","unavailable":true}`, func(st *State) bool {
			return gs(st).Unavailable && len(gs(st).Members) == 1
		}},
		{"GUILD_DELETE", `{"id":"4194304"}`, func(st *State) bool { return gs(st) == nil }},
		{"CHANNEL_UPDATE", `{"id":"10","type":0,"name":"x","guild_id":"4194304"}`, func(st *State) bool {
			return gs(st).Channels["10"]["name"] == "x" && gs(st).Channels["10"]["guild_id"] == nil
		}},
		{"CHANNEL_DELETE", `{"id":"10","guild_id":"4194304"}`, func(st *State) bool {
			return gs(st).Channels["10"] == nil && gs(st).Messages["10"] == nil
		}},
		{"THREAD_DELETE", `{"id":"11","guild_id":"4194304","parent_id":"10","type":11}`, func(st *State) bool {
			return gs(st).Channels["11"] == nil && gs(st).Channels["10"] != nil
		}},
		{"GUILD_ROLE_CREATE", `{"guild_id":"4194304","role":{"id":"50","permissions":"8"}}`, func(st *State) bool {
			return gs(st).Roles["50"]["permissions"] == "8"
		}},
		{"GUILD_ROLE_DELETE", `{"guild_id":"4194304","role_id":"4194304"}`, func(st *State) bool { return len(gs(st).Roles) == 0 }},
		{"GUILD_EMOJIS_UPDATE", `{"guild_id":"4194304","emojis":[{"id":"22"}]}`, func(st *State) bool {
			return len(gs(st).Emojis) == 1 && gs(st).Emojis["22"] != nil
		}},
		{"GUILD_STICKERS_UPDATE", `{"guild_id":"4194304","stickers":[]}`, func(st *State) bool { return len(gs(st).Stickers) == 0 }},
		{"GUILD_MEMBER_ADD", `{"guild_id":"4194304","user":{"id":"31"},"roles":[]}`, func(st *State) bool {
			return gs(st).Members["31"] != nil && gs(st).Members["31"]["guild_id"] == nil
		}},
		{"GUILD_MEMBER_UPDATE", `{"guild_id":"4194304","user":{"id":"30"},"nick":"n"}`, func(st *State) bool {
			return gs(st).Members["30"]["nick"] == "n" && gs(st).Members["30"]["roles"] != nil
		}},
		{"GUILD_MEMBER_UPDATE", `{"guild_id":"4194304","user":{"id":"32"},"nick":"n"}`, func(st *State) bool {
			return gs(st).Members["32"]["nick"] == "n"
		}},
		{"GUILD_MEMBER_REMOVE", `{"guild_id":"4194304","user":{"id":"30"}}`, func(st *State) bool {
			return gs(st).Members["30"] == nil && gs(st).Presences["30"] != nil && gs(st).VoiceStates["30"] != nil
		}},
		{"GUILD_MEMBERS_CHUNK", `{"guild_id":"4194304","members":[{"user":{"id":"33"}}],"presences":[{"user":{"id":"33"},"status":"idle"}]}`, func(st *State) bool {
			return gs(st).Members["33"] != nil && gs(st).Presences["33"]["status"] == "idle"
		}},
		{"VOICE_STATE_UPDATE", `{"guild_id":"4194304","user_id":"30","channel_id":null}`, func(st *State) bool {
			return gs(st).VoiceStates["30"] == nil
		}},
		{"VOICE_STATE_UPDATE", `{"guild_id":"4194304","user_id":"30","channel_id":"13","member":{}}`, func(st *State) bool {
			v := gs(st).VoiceStates["30"]
			return v["channel_id"] == "13" && v["member"] == nil && v["guild_id"] == nil
		}},
		{"PRESENCE_UPDATE", `{"guild_id":"4194304","user":{"id":"30"},"status":"dnd"}`, func(st *State) bool {
			return gs(st).Presences["30"]["status"] == "dnd" && gs(st).Presences["30"]["guild_id"] == nil
		}},
		{"MESSAGE_CREATE", `{"id":"41","channel_id":"10","guild_id":"4194304"}`, func(st *State) bool {
			return len(gs(st).Messages["10"]) == 2
		}},
		{"MESSAGE_UPDATE", `{"id":"40","channel_id":"10","guild_id":"4194304","content":"b"}`, func(st *State) bool {
			return gs(st).Messages["10"][0]["content"] == "b"
		}},
		{"MESSAGE_DELETE", `{"id":"40","channel_id":"10","guild_id":"4194304"}`, func(st *State) bool {
			return len(gs(st).Messages["10"]) == 0
		}},
		{"MESSAGE_DELETE_BULK", `{"ids":["40","99"],"channel_id":"10","guild_id":"4194304"}`, func(st *State) bool {
			return len(gs(st).Messages["10"]) == 0
		}},
		{"MESSAGE_CREATE", `{"id":"42","channel_id":"10"}`, func(st *State) bool { return len(gs(st).Messages["10"]) == 1 }}, // a DM
		{"TYPING_START", `not even JSON`, func(st *State) bool { return len(st.Guilds) == 2 }},
		// A guild no GUILD_CREATE brought is not invented by a change to it
		// (the fleet's cache could not place it either).
		{"GUILD_ROLE_CREATE", `{"guild_id":"12582912","role":{"id":"5"}}`, func(st *State) bool { return len(st.Guilds) == 2 }},
		{"GUILD_UPDATE", `{"id":"12582912","name":"x"}`, func(st *State) bool { return len(st.Guilds) == 2 }},
		{"GUILD_DELETE", `{"id":"12582912","unavailable":true}`, func(st *State) bool { return len(st.Guilds) == 2 }},
		{"GUILD_CREATE", `{"id":"12582912","unavailable":true}`, func(st *State) bool { return len(st.Guilds) == 2 }},
		{"GUILD_CREATE", `{"id":"4194304","unavailable":true}`, func(st *State) bool { // an outage, the rest kept
			return gs(st).Unavailable && gs(st).Guild["name"] == "g" && len(gs(st).Members) == 1
		}},
		// A message of a channel the guild does not hold has no list to go in.
		{"MESSAGE_CREATE", `{"id":"43","channel_id":"99","guild_id":"4194304"}`, func(st *State) bool { return gs(st).Messages["99"] == nil }},
	} {
		st := base()
		d := tc.d
		if err := ApplyDispatch(st, tc.typ, json.RawMessage(d)); err != nil {
			t.Fatalf("%s %s: %v", tc.typ, d, err)
		}
		if !tc.check(st) {
			b, _ := json.Marshal(st)
			t.Errorf("%s %s: state %s", tc.typ, d, b)
		}
	}
	// The message limit: the last 2 are kept, oldest first.
	st := base()
	for i := range 3 {
		_ = ApplyDispatch(st, "MESSAGE_CREATE", json.RawMessage(fmt.Sprintf(`{"id":"%d","channel_id":"10","guild_id":"4194304"}`, 50+i)))
	}
	if got := gs(st).Messages["10"]; len(got) != 2 || got[0]["id"] != "51" || got[1]["id"] != "52" {
		t.Fatalf("kept %v, want 51 and 52", got)
	}
	if err := ApplyDispatch(st, "CHANNEL_CREATE", json.RawMessage(`{"id":"5"}`)); err == nil {
		t.Fatal("CHANNEL_CREATE without guild_id accepted")
	}
}

// TestDiff: missing equals empty (a guild on one side only is one
// difference), kinds limit the comparison, and each
// difference names the guild, field and id.
func TestDiff(t *testing.T) {
	parse := func(s string) *State {
		st := NewState(0)
		if err := json.Unmarshal([]byte(s), st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	a := parse(`{"guilds":{"1":{"guild":{"id":"1"},"unavailable":false,"channels":{"2":{"id":"2"}},"roles":{},
		"presences":{"3":{"status":"online"}},"messages":{"2":[]}}}}`)
	b := parse(`{"guilds":{"1":{"guild":{"id":"1"},"channels":{"2":{"id":"2"}},"presences":{"3":{"status":"idle"}}}}}`)
	if d := Diff(a, b, 0, "guilds", "channels", "roles", "messages"); len(d) != 0 {
		t.Fatalf("missing and empty differ: %v", d)
	}
	if d := Diff(a, b, 0); len(d) != 1 || !strings.Contains(d[0], "guild 1 presences[3]") {
		t.Fatalf("diff %v, want presences[3] of guild 1", d)
	}
	if d := Diff(a, parse(`{"guilds":{}}`), 0, "channels"); len(d) != 1 || !strings.Contains(d[0], "guild 1: want present true, got present false") {
		t.Fatalf("diff with a missing guild: %v", d)
	}
	if err := ApplyDispatch(b, "GUILD_ROLE_CREATE", json.RawMessage(`{"guild_id":"1","role":{"id":"5"}}`)); err != nil ||
		b.Guilds["1"].Roles["5"] == nil {
		t.Fatalf("a rule on a decoded state without roles: %v", err)
	}
	if d := Diff(a, b, 0, "emoji"); len(d) != 1 || !strings.Contains(d[0], "unknown kind") {
		t.Fatalf("diff with an unknown kind: %v", d)
	}
	if d := Diff(a, parse(`{"guilds":{"1":{},"2":{"guild":{"id":"2"}}}}`), 2); len(d) != 2 {
		t.Fatalf("max 2: %d differences", len(d))
	}
}

// FuzzApplyDispatch feeds arbitrary dispatches to the contract's rules (a
// cache test's oracle reads what a client received): they never panic, and
// a dispatch they refuse leaves the state as it was.
func FuzzApplyDispatch(f *testing.F) {
	for _, seed := range [][2]string{
		{"GUILD_CREATE", `{"id":"4194304","channels":[{"id":"1"}],"members":[{"user":{"id":"2"}}]}`},
		{"READY", `{"guilds":[{"id":"4194304"}],"shard":[0,1]}`}, {"READY", `{"shard":[1,0]}`},
		{"GUILD_ROLE_CREATE", `{"guild_id":"4194304","role":{"id":"3"}}`}, {"GUILD_ROLE_CREATE", `{"guild_id":"1","role":5}`},
		{"VOICE_STATE_UPDATE", `{"guild_id":"1","user_id":"2","channel_id":null}`},
		{"MESSAGE_DELETE_BULK", `{"guild_id":"1","channel_id":"2","ids":"x"}`}, {"GUILD_EMOJIS_UPDATE", `{"guild_id":"1"}`},
		{"GUILD_MEMBER_UPDATE", `{"guild_id":"1","user":[]}`}, {"MESSAGE_CREATE", `[]`},
	} {
		f.Add(seed[0], []byte(seed[1]))
	}
	f.Fuzz(func(t *testing.T, typ string, d []byte) {
		st := NewState(2)
		_ = ApplyDispatch(st, "GUILD_CREATE", json.RawMessage(`{"id":"4194304","channels":[{"id":"1"}]}`))
		before, _ := json.Marshal(st)
		if err := ApplyDispatch(st, typ, d); err != nil {
			if after, _ := json.Marshal(st); !bytes.Equal(before, after) {
				t.Fatalf("%s %q refused (%v) but changed the state", typ, d, err)
			}
		}
	})
}
