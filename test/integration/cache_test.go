package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/disgoorg/snowflake/v2"

	"github.com/shardfleet/shardfleet/internal/cache"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// workerCLI runs `worker args...` against the fleet's Redis and returns its
// output and exit code.
func (f *fleet) workerCLI(args ...string) (string, int) {
	f.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "worker"), args...)
	// A -race binary sleeps 1 s at exit for late reports (atexit_sleep_ms);
	// a short CLI run reports its races before it exits anyway.
	url := f.redis.URL()
	if f.cliRedisURL != "" {
		url = f.cliRedisURL
	}
	cmd.Env = append(os.Environ(), "REDIS_URL="+url, "KEY_PREFIX="+prefix, "GORACE=atexit_sleep_ms=0")
	// stdout only on success: go-redis logs (a Sentinel client's "new
	// master") go to stderr and are not part of what the command printed.
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		f.t.Fatalf("worker %s: %v", strings.Join(args, " "), err)
	}
	if code != 0 {
		return stdout.String() + stderr.String(), code
	}
	return stdout.String(), code
}

// dispatch makes the fake send dispatch t with d to guild's shard
// (POST /_fake/dispatch).
func (f *fake) dispatch(t testing.TB, typ string, guild snowflake.ID, d string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"t": typ, "guild_id": guild, "d": json.RawMessage(d)})
	resp, err := http.Post(f.url+"/_fake/dispatch", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST /_fake/dispatch %s: %v", typ, err)
	}
	defer resp.Body.Close()
	var sent struct{ Sent int }
	if err := json.NewDecoder(resp.Body).Decode(&sent); err != nil || resp.StatusCode != http.StatusOK || sent.Sent != 1 {
		t.Fatalf("POST /_fake/dispatch %s: %s, sent to %d sessions (%v), want 1", typ, resp.Status, sent.Sent, err)
	}
}

// guildCreates are the GUILD_CREATE ds the fake sent, by guild ID.
func (f *fake) guildCreates(t testing.TB) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for _, s := range f.sessions(t) {
		var evs []struct {
			gatewaytest.SentEvent
			D json.RawMessage `json:"d"`
		}
		f.get(t, "/_fake/events?data=true&session="+s.ID, &evs)
		for _, e := range evs {
			var g struct{ ID string }
			if e.Type == "GUILD_CREATE" && json.Unmarshal(e.D, &g) == nil {
				out[g.ID] = e.D
			}
		}
	}
	return out
}

type object = map[string]any

// cachedGuild is the contract's state of a guild as its GUILD_CREATE d
// leaves it, written here from the contract rather than from internal/cache.
func cachedGuild(t testing.TB, d json.RawMessage) object {
	t.Helper()
	var g object
	dec := json.NewDecoder(bytes.NewReader(d))
	dec.UseNumber()
	if err := dec.Decode(&g); err != nil {
		t.Fatal(err)
	}
	key := func(o object, path ...string) string {
		for _, p := range path[:len(path)-1] {
			o = o[p].(object)
		}
		return o[path[len(path)-1]].(string)
	}
	index := func(path []string, drop string, arrays ...string) object {
		out := object{}
		for _, a := range arrays {
			list, _ := g[a].([]any)
			for _, e := range list {
				o := e.(object)
				delete(o, "guild_id")
				delete(o, drop)
				out[key(o, path...)] = o
			}
		}
		return out
	}
	st := object{"unavailable": false,
		"channels":     index([]string{"id"}, "", "channels", "threads"),
		"roles":        index([]string{"id"}, "", "roles"),
		"emojis":       index([]string{"id"}, "", "emojis"),
		"stickers":     index([]string{"id"}, "", "stickers"),
		"members":      index([]string{"user", "id"}, "", "members"),
		"voice_states": index([]string{"user_id"}, "member", "voice_states"),
		"presences":    index([]string{"user", "id"}, "", "presences"),
	}
	for _, a := range []string{"channels", "threads", "roles", "emojis", "stickers", "members", "voice_states",
		"presences", "stage_instances", "guild_scheduled_events", "soundboard_sounds"} {
		delete(g, a)
	}
	st["guild"] = g
	return st
}

func parseObject(t testing.TB, s string) object {
	t.Helper()
	var o object
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&o); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	delete(o, "guild_id")
	return o
}

// TestCacheFollowsDispatches: worker processes keep the cache of every
// kind as the fake's dispatches change it (injected through the fake's
// dispatch control), and `worker cache dump` equals the expected state field
// by field; after a kill -9 of the owner of a guild's shard, its successor
// goes on from the same cache. The expected state is built here from what
// the fake sent, so that dispatches the fake's world never sends (ids it
// would not choose, a member without joined_at) are covered too;
// TestCacheEqualsTheWorld compares with the fake's world instead.
func TestCacheFollowsDispatches(t *testing.T) {
	const count = 2
	f := newFleet(t, count, 0)
	const kinds = "guilds,channels,roles,emojis,voice_states,members,presences,messages"
	settings := []string{"CACHE=" + kinds, "CACHE_MESSAGES=2", "CACHE_OLD=true"}
	f.startWorker("w1", settings...)
	f.startWorker("w2", settings...)
	f.waitAllReady("every shard READY")

	g0, g1 := guildOf(t, f.fake, 0, count), guildOf(t, f.fake, 1, count)
	var left snowflake.ID // a second guild of shard 1: the bot leaves it
	for _, g := range fakeGet[[]snowflake.ID](t, f.fake, "/_fake/guilds") {
		if int(uint64(g)>>22)%count == 1 && g != g1 {
			left = g
			break
		}
	}
	want := object{}
	poll(t, "a GUILD_CREATE of every guild", 10*time.Second, func() bool {
		creates := f.fake.guildCreates(t)
		for id, d := range creates {
			want[id] = cachedGuild(t, d)
		}
		return len(creates) == len(fakeGet[[]snowflake.ID](t, f.fake, "/_fake/guilds"))
	})

	s0 := want[g0.String()].(object)
	general := fmt.Sprint(g0 + 1) // the fake's one channel of a guild
	send := func(typ string, g snowflake.ID, d string) { f.fake.dispatch(t, typ, g, d) }
	with := func(d string) string { return strings.Replace(d, "{", fmt.Sprintf(`{"guild_id":"%s",`, g0), 1) }

	send("CHANNEL_CREATE", g0, with(`{"id":"900","type":2,"name":"voice","position":1}`))
	send("CHANNEL_UPDATE", g0, with(`{"id":"`+general+`","type":0,"name":"renamed","position":0}`))
	s0["channels"].(object)["900"] = parseObject(t, `{"id":"900","type":2,"name":"voice","position":1}`)
	s0["channels"].(object)[general] = parseObject(t, `{"id":"`+general+`","type":0,"name":"renamed","position":0}`)
	send("THREAD_CREATE", g0, with(`{"id":"901","type":11,"parent_id":"`+general+`"}`))
	send("THREAD_DELETE", g0, with(`{"id":"901","type":11,"parent_id":"`+general+`"}`))

	send("GUILD_ROLE_CREATE", g0, with(`{"role":{"id":"910","name":"mods","permissions":"8"}}`))
	send("GUILD_ROLE_CREATE", g0, with(`{"role":{"id":"911","name":"tmp","permissions":"0"}}`))
	send("GUILD_ROLE_UPDATE", g0, with(`{"role":{"id":"910","name":"admins","permissions":"8"}}`))
	send("GUILD_ROLE_DELETE", g0, with(`{"role_id":"911"}`))
	s0["roles"].(object)["910"] = parseObject(t, `{"id":"910","name":"admins","permissions":"8"}`)

	send("GUILD_EMOJIS_UPDATE", g0, with(`{"emojis":[{"id":"920","name":"e","roles":[]}]}`))
	send("GUILD_STICKERS_UPDATE", g0, with(`{"stickers":[{"id":"921","name":"s"}]}`))
	s0["emojis"] = object{"920": parseObject(t, `{"id":"920","name":"e","roles":[]}`)}
	s0["stickers"] = object{"921": parseObject(t, `{"id":"921","name":"s"}`)}

	send("GUILD_MEMBER_ADD", g0, with(`{"user":{"id":"930","username":"a"},"roles":[],"joined_at":"2024-01-01T00:00:00Z","deaf":false}`))
	send("GUILD_MEMBER_UPDATE", g0, with(`{"user":{"id":"930","username":"a"},"roles":["910"],"nick":"n"}`))
	send("GUILD_MEMBER_ADD", g0, with(`{"user":{"id":"931","username":"b"},"roles":[]}`))
	send("GUILD_MEMBER_REMOVE", g0, with(`{"user":{"id":"931","username":"b"}}`))
	send("GUILD_MEMBERS_CHUNK", g0, with(`{"members":[{"user":{"id":"932","username":"c"},"roles":[]}],"presences":[{"user":{"id":"932"},"status":"dnd"}],"chunk_index":0,"chunk_count":1}`))
	s0["members"].(object)["930"] = parseObject(t, `{"user":{"id":"930","username":"a"},"roles":["910"],"nick":"n","joined_at":"2024-01-01T00:00:00Z","deaf":false}`)
	s0["members"].(object)["932"] = parseObject(t, `{"user":{"id":"932","username":"c"},"roles":[]}`)
	s0["presences"].(object)["932"] = parseObject(t, `{"user":{"id":"932"},"status":"dnd"}`)

	send("VOICE_STATE_UPDATE", g0, with(`{"user_id":"930","channel_id":"900","session_id":"v","member":{"user":{"id":"930"}}}`))
	send("VOICE_STATE_UPDATE", g0, with(`{"user_id":"932","channel_id":"900","session_id":"w"}`))
	send("VOICE_STATE_UPDATE", g0, with(`{"user_id":"932","channel_id":null,"session_id":"w"}`))
	s0["voice_states"].(object)["930"] = parseObject(t, `{"user_id":"930","channel_id":"900","session_id":"v"}`)
	send("PRESENCE_UPDATE", g0, with(`{"user":{"id":"930"},"status":"idle","activities":[]}`))
	s0["presences"].(object)["930"] = parseObject(t, `{"user":{"id":"930"},"status":"idle","activities":[]}`)

	for i := 1; i <= 4; i++ {
		send("MESSAGE_CREATE", g0, with(fmt.Sprintf(`{"id":"95%d","channel_id":"%s","content":"m%d"}`, i, general, i)))
	}
	send("MESSAGE_UPDATE", g0, with(`{"id":"954","channel_id":"`+general+`","content":"edited"}`))
	send("MESSAGE_DELETE", g0, with(`{"id":"953","channel_id":"`+general+`"}`))
	s0["messages"] = object{general: []any{parseObject(t, `{"id":"954","channel_id":"`+general+`","content":"edited"}`)}}

	send("GUILD_UPDATE", g0, `{"id":"`+g0.String()+`","name":"renamed guild","roles":[]}`)
	s0["guild"].(object)["name"] = "renamed guild"

	send("GUILD_DELETE", g1, `{"id":"`+g1.String()+`","unavailable":true}`)
	want[g1.String()].(object)["unavailable"] = true
	send("GUILD_DELETE", left, `{"id":"`+left.String()+`"}`)
	delete(want, left.String())

	k, err := cache.ParseKinds(kinds)
	if err != nil {
		t.Fatal(err)
	}
	f.waitCacheEquals(want, k)
	checkOldInStream(t, f, general)

	// The owner of guild g0's shard is killed; its successor RESUMEs and
	// goes on changing the same cache.
	owners, _ := f.owners()
	victim := owners[0]
	f.workers[victim].signal(syscall.SIGKILL)
	survivor := map[string]string{"w1": "w2", "w2": "w1"}[victim]
	f.waitAllReady("every shard READY on the survivor", survivor)
	send("CHANNEL_DELETE", g0, with(`{"id":"900","type":2}`))
	send("GUILD_MEMBER_REMOVE", g0, with(`{"user":{"id":"930","username":"a"}}`))
	send("MESSAGE_CREATE", g0, with(`{"id":"955","channel_id":"`+general+`","content":"after"}`))
	delete(s0["channels"].(object), "900")
	delete(s0["members"].(object), "930")
	s0["messages"] = object{general: []any{parseObject(t, `{"id":"954","channel_id":"`+general+`","content":"edited"}`),
		parseObject(t, `{"id":"955","channel_id":"`+general+`","content":"after"}`)}}
	f.waitCacheEquals(want, k)
	f.checkStream()
}

// waitCacheEquals polls `worker cache dump` until it equals want (guild ID
// -> the contract's guild object) for kinds, field by field.
func (f *fleet) waitCacheEquals(want object, kinds cache.Kinds) {
	t := f.t
	t.Helper()
	wantJSON, _ := json.Marshal(object{"guilds": want})
	var diffs []string
	var dump string
	defer func() { // the last differences, when the poll gives up
		if t.Failed() && len(diffs) > 0 {
			t.Logf("cache differs:\n%s\ndump: %s", strings.Join(diffs, "\n"), dump)
		}
	}()
	pollEvery(t, "worker cache dump to equal the expected state", 15*time.Second, 100*time.Millisecond, func() bool {
		out, code := f.workerCLI("cache", "dump")
		if code != 0 {
			t.Fatalf("worker cache dump: exit %d: %s", code, out)
		}
		var err error
		dump = out
		if diffs, err = cache.Diff(wantJSON, []byte(out), kinds); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return len(diffs) == 0
	})
}

// checkOldInStream: with CACHE_OLD the CHANNEL_UPDATE entry carries the
// channel as GUILD_CREATE left it.
func checkOldInStream(t *testing.T, f *fleet, channel string) {
	t.Helper()
	msgs, err := f.client.XRange(t.Context(), prefix+"events", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.Values["type"] != "CHANNEL_UPDATE" {
			continue
		}
		old, _ := m.Values["old"].(string)
		if !strings.Contains(old, `"name":"general"`) || !strings.Contains(old, `"id":"`+channel+`"`) {
			t.Fatalf("CHANNEL_UPDATE entry old = %q, want the general channel before the update", old)
		}
		return
	}
	t.Fatal("no CHANNEL_UPDATE in the stream")
}
