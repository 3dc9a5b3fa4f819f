package eventsink

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/cache"
	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/internal/redistest"
)

var cacheAll = cache.Config{Kinds: cache.Guilds | cache.Channels | cache.Roles | cache.Emojis | cache.VoiceStates |
	cache.Members | cache.Presences | cache.Messages, Messages: 2, Old: true}

// dispatch is one event of a scripted session: type and d.
type dispatch struct{ t, d string }

// session numbers dispatches from seq from on, in session id.
func session(id string, from int, ds ...dispatch) []Event {
	out := make([]Event, len(ds))
	for i, d := range ds {
		out[i] = Event{Type: d.t, Seq: from + i, SessionID: id, Data: json.RawMessage(d.d)}
	}
	return out
}

// cacheSession is every dispatch kind the cache keeps, applied to two guilds.
var cacheSession = []dispatch{
	{"READY", `{"session_id":"S1","guilds":[{"id":"100","unavailable":true},{"id":"200","unavailable":true}]}`},
	{"GUILD_CREATE", `{"id":"100","name":"g","member_count":2,"large":false,"joined_at":"2020-01-01T00:00:00Z",
	  "channels":[{"id":"1001","type":0,"name":"general","position":0}],
	  "threads":[{"id":"1002","type":11,"name":"t","parent_id":"1001","guild_id":"100"}],
	  "roles":[{"id":"100","name":"@everyone","permissions":"1024"},{"id":"1003","name":"mod","permissions":"8"}],
	  "emojis":[{"id":"1004","name":"e","roles":[]}],"stickers":[{"id":"1005","name":"s"}],
	  "members":[{"user":{"id":"11","username":"a"},"roles":[],"joined_at":"2020-01-01T00:00:00Z","deaf":false},
	             {"user":{"id":"12","username":"b"},"roles":["1003"],"joined_at":"2020-01-02T00:00:00Z"}],
	  "voice_states":[{"user_id":"11","channel_id":"1001","session_id":"v1","self_mute":false}],
	  "presences":[{"user":{"id":"11"},"status":"online","activities":[]}],
	  "stage_instances":[],"guild_scheduled_events":[],"soundboard_sounds":[]}`},
	{"GUILD_CREATE", `{"id":"200","name":"other","channels":[],"roles":[],"members":[]}`},
	{"GUILD_UPDATE", `{"id":"100","name":"renamed","roles":[{"id":"1003"}],"emojis":[],"guild_id":"100"}`},
	{"CHANNEL_CREATE", `{"id":"1006","type":2,"name":"voice","guild_id":"100"}`},
	{"CHANNEL_UPDATE", `{"id":"1001","type":0,"name":"chat","position":1,"guild_id":"100"}`},
	{"THREAD_DELETE", `{"id":"1002","type":11,"parent_id":"1001","guild_id":"100"}`},
	{"GUILD_ROLE_CREATE", `{"guild_id":"100","role":{"id":"1007","name":"tmp","permissions":"0"}}`},
	{"GUILD_ROLE_UPDATE", `{"guild_id":"100","role":{"id":"1003","name":"admin","permissions":"8"}}`},
	{"GUILD_ROLE_DELETE", `{"guild_id":"100","role_id":"1007"}`},
	{"GUILD_EMOJIS_UPDATE", `{"guild_id":"100","emojis":[{"id":"1008","name":"f","roles":[]}]}`},
	{"GUILD_STICKERS_UPDATE", `{"guild_id":"100","stickers":[]}`},
	{"GUILD_MEMBER_ADD", `{"guild_id":"100","user":{"id":"13","username":"c"},"roles":[],"joined_at":"2021-01-01T00:00:00Z"}`},
	{"GUILD_MEMBER_UPDATE", `{"guild_id":"100","user":{"id":"11","username":"a2"},"roles":["1003"],"nick":"n"}`},
	{"GUILD_MEMBER_REMOVE", `{"guild_id":"100","user":{"id":"12","username":"b"}}`},
	{"GUILD_MEMBERS_CHUNK", `{"guild_id":"100","chunk_index":0,"chunk_count":1,
	  "members":[{"user":{"id":"14","username":"d"},"roles":[]}],"presences":[{"user":{"id":"14"},"status":"dnd"}]}`},
	{"VOICE_STATE_UPDATE", `{"guild_id":"100","user_id":"13","channel_id":"1006","session_id":"v3","member":{"user":{"id":"13"}}}`},
	{"VOICE_STATE_UPDATE", `{"guild_id":"100","user_id":"11","channel_id":null,"session_id":"v1"}`},
	{"PRESENCE_UPDATE", `{"guild_id":"100","user":{"id":"11"},"status":"idle","activities":[]}`},
	{"MESSAGE_CREATE", `{"id":"5001","channel_id":"1001","guild_id":"100","content":"one","nonce":12345678901234567890}`},
	{"MESSAGE_CREATE", `{"id":"5002","channel_id":"1001","guild_id":"100","content":"two"}`},
	{"MESSAGE_CREATE", `{"id":"5003","channel_id":"1001","guild_id":"100","content":"three","embeds":[]}`},
	{"MESSAGE_UPDATE", `{"id":"5003","channel_id":"1001","guild_id":"100","content":"three!","edited_timestamp":"x"}`},
	{"MESSAGE_DELETE", `{"id":"5002","channel_id":"1001","guild_id":"100"}`},
	{"MESSAGE_CREATE", `{"id":"5004","channel_id":"1006","guild_id":"100","content":"four"}`},
	{"MESSAGE_CREATE", `{"id":"5005","channel_id":"1006","guild_id":"100","content":"five"}`},
	{"MESSAGE_DELETE_BULK", `{"ids":["5004"],"channel_id":"1006","guild_id":"100"}`},
	{"MESSAGE_CREATE", `{"id":"5006","channel_id":"7","content":"a DM: not cached"}`},
	{"CHANNEL_CREATE", `{"id":"9001","type":0,"guild_id":"999"}`},
	{"GUILD_DELETE", `{"id":"200","unavailable":true}`},
}

// cacheWant is the state cacheSession leaves.
const cacheWant = `{"guilds":{
 "100":{"guild":{"id":"100","name":"renamed","member_count":2,"large":false,"joined_at":"2020-01-01T00:00:00Z"},
  "channels":{"1001":{"id":"1001","type":0,"name":"chat","position":1},"1006":{"id":"1006","type":2,"name":"voice"}},
  "roles":{"100":{"id":"100","name":"@everyone","permissions":"1024"},"1003":{"id":"1003","name":"admin","permissions":"8"}},
  "emojis":{"1008":{"id":"1008","name":"f","roles":[]}},
  "members":{"11":{"user":{"id":"11","username":"a2"},"roles":["1003"],"nick":"n","joined_at":"2020-01-01T00:00:00Z","deaf":false},
             "13":{"user":{"id":"13","username":"c"},"roles":[],"joined_at":"2021-01-01T00:00:00Z"},
             "14":{"user":{"id":"14","username":"d"},"roles":[]}},
  "voice_states":{"13":{"user_id":"13","channel_id":"1006","session_id":"v3"}},
  "presences":{"11":{"user":{"id":"11"},"status":"idle","activities":[]},"14":{"user":{"id":"14"},"status":"dnd"}},
  "messages":{"1001":[{"id":"5003","channel_id":"1001","content":"three!","embeds":[],"edited_timestamp":"x"}],
              "1006":[{"id":"5005","channel_id":"1006","content":"five"}]}},
 "200":{"guild":{"id":"200","name":"other"},"unavailable":true}}}`

func newCacheSink(t *testing.T, c redis.UniversalClient, cfg cache.Config) *Sink {
	t.Helper()
	return newSink(t, c, WithCache(cfg))
}

// committedCache starts a redis-server and commits ds as session S1 of shard
// 0/1 through a sink keeping every kind.
func committedCache(t *testing.T, ds ...dispatch) (*redis.Client, *Sink, Shard, Fence) {
	t.Helper()
	c := startRedis(t)
	s := newCacheSink(t, c, cacheAll)
	shard, fence := Shard{ID: 0, Count: 1}, Fence{"w1", 7}
	grant(t, c, shard, fence)
	if _, err := s.Commit(context.Background(), shard, fence, session("S1", 1, ds...)); err != nil {
		t.Fatal(err)
	}
	return c, s, shard, fence
}

// checkCache compares the cache of shard with want (the contract's JSON shape).
func checkCache(t *testing.T, c redis.UniversalClient, shard Shard, kinds cache.Kinds, want string) {
	t.Helper()
	st, err := cache.Dump(context.Background(), c, lease.NewKeys(prefix), []Shard{shard}, kinds)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(st)
	diffs, err := cache.Diff([]byte(want), got, kinds)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		t.Fatalf("cache differs from the expected state:\n%s\ngot %s", strings.Join(diffs, "\n"), got)
	}
}

// TestCacheEveryDispatchKind: a Writer commits a session holding every
// dispatch kind; the cache ends as the contract says.
func TestCacheEveryDispatchKind(t *testing.T) {
	c := startRedis(t)
	s := newCacheSink(t, c, cacheAll)
	shard, fence := Shard{ID: 0, Count: 1}, Fence{"w1", 7}
	grant(t, c, shard, fence)
	w := s.Open(shard, fence, SessionRecord{}, Rejections{})
	ctx := context.Background()
	for _, ev := range session("S1", 1, cacheSession...) {
		if err := w.Add(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	checkCache(t, c, shard, cacheAll.Kinds, cacheWant)
	if st := s.Stats(); st.CacheErrors != 0 || st.Committed != uint64(len(cacheSession)) {
		t.Fatalf("stats %+v: want %d committed, no cache errors", st, len(cacheSession))
	}
}

// TestCacheReplayAndStaleOwnerChangeNothing: a RESUME's replay (or a retry)
// of committed events changes the cache no further, although pushing a
// message or merging a member twice would; a fenced-off owner changes nothing.
func TestCacheReplayAndStaleOwnerChangeNothing(t *testing.T) {
	c, s, shard, fence := committedCache(t, cacheSession...)
	ctx := context.Background()
	evs := session("S1", 1, cacheSession...)
	if r, err := s.Commit(ctx, shard, fence, evs[12:22]); err != nil || r.Committed != 0 {
		t.Fatalf("replay: %+v %v", r, err)
	}
	checkCache(t, c, shard, cacheAll.Kinds, cacheWant)

	grant(t, c, shard, Fence{"w2", 8}) // the lease moved on
	late := session("S1", len(evs)+1, dispatch{"CHANNEL_DELETE", `{"id":"1001","guild_id":"100"}`},
		dispatch{"GUILD_DELETE", `{"id":"100"}`})
	if _, err := s.Commit(ctx, shard, fence, late); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale owner's commit: %v, want ErrFenced", err)
	}
	checkCache(t, c, shard, cacheAll.Kinds, cacheWant)
}

// TestCacheReadyReconciles: the READY of a new session removes, with all its
// kinds, every guild of the shard it does not list (the bot left while the
// shard was away); GUILD_DELETE without unavailable removes one at once.
func TestCacheReadyReconciles(t *testing.T) {
	c, s, shard, fence := committedCache(t, cacheSession...)
	ctx := context.Background()
	ready := session("S2", 1, dispatch{"READY", `{"session_id":"S2","guilds":[{"id":"200","unavailable":true}]}`})
	if _, err := s.Commit(ctx, shard, fence, ready); err != nil {
		t.Fatal(err)
	}
	checkCache(t, c, shard, cacheAll.Kinds, `{"guilds":{"200":{"guild":{"id":"200","name":"other"},"unavailable":true}}}`)
	keys, err := c.Keys(ctx, prefix+"cache:g:100*").Result() // a test may list: nothing of 100 may be left
	if err != nil || len(keys) != 0 {
		t.Fatalf("keys of the removed guild left: %v %v", keys, err)
	}
	if _, err := s.Commit(ctx, shard, fence, session("S2", 2, dispatch{"GUILD_DELETE", `{"id":"200"}`})); err != nil {
		t.Fatal(err)
	}
	checkCache(t, c, shard, cacheAll.Kinds, `{"guilds":{}}`)
	if n, err := c.DBSize(ctx).Result(); err != nil || n != 4 { // lease, member, session, events
		all, _ := c.Keys(ctx, "*").Result()
		t.Fatalf("keys left after the last guild went: %v", all)
	}
}

// TestCacheOldOnEntries: with Old, update and delete entries carry the
// cached object as it was; creates and unknown objects carry none.
func TestCacheOldOnEntries(t *testing.T) {
	c, _, _, _ := committedCache(t, cacheSession...)
	ctx := context.Background()
	msgs, err := c.XRange(ctx, lease.NewKeys(prefix).Events(0), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{ // seq -> old
		4:  `{"id":"100","joined_at":"2020-01-01T00:00:00Z","large":false,"member_count":2,"name":"g"}`,
		6:  `{"id":"1001","name":"general","position":0,"type":0}`,
		7:  `{"id":"1002","name":"t","parent_id":"1001","type":11}`,
		9:  `{"id":"1003","name":"mod","permissions":"8"}`,
		10: `{"id":"1007","name":"tmp","permissions":"0"}`,
		14: `{"deaf":false,"joined_at":"2020-01-01T00:00:00Z","roles":[],"user":{"id":"11","username":"a"}}`,
		15: `{"joined_at":"2020-01-02T00:00:00Z","roles":["1003"],"user":{"id":"12","username":"b"}}`,
		18: `{"channel_id":"1001","self_mute":false,"session_id":"v1","user_id":"11"}`,
		19: `{"activities":[],"status":"online","user":{"id":"11"}}`,
		23: `{"channel_id":"1001","content":"three","embeds":[],"id":"5003"}`,
		24: `{"channel_id":"1001","content":"two","id":"5002"}`,
		30: `{"guild":"ignored"}`, // GUILD_DELETE 200: checked below as JSON
	}
	for i, m := range msgs {
		seq := i + 1
		old, has := m.Values["old"].(string)
		w, wantOld := want[seq]
		switch {
		case seq == 30:
			if !has || !strings.Contains(old, `"name":"other"`) {
				t.Errorf("GUILD_DELETE entry old = %q", old)
			}
		case has != wantOld || (has && !sameJSON(old, w)):
			t.Errorf("seq %d (%s): old = %q (present %v), want %q", seq, m.Values["type"], old, has, w)
		}
	}
}

// sameJSON reports whether a and b are the same JSON value (object keys in any order).
func sameJSON(a, b string) bool {
	var x, y any
	return json.Unmarshal([]byte(a), &x) == nil && json.Unmarshal([]byte(b), &y) == nil && reflect.DeepEqual(x, y)
}

// TestCacheCorruptValueKeepsTheStream: a cached value the script cannot
// change (a key of the wrong type) costs that event's cache change, counted,
// never the event.
func TestCacheCorruptValueKeepsTheStream(t *testing.T) {
	c, s, shard, fence := committedCache(t, cacheSession[:2]...)
	ctx := context.Background()
	k := lease.NewKeys(prefix)
	if err := c.Set(ctx, k.CacheGuild(shard, "100", ":members"), "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r, err := s.Commit(ctx, shard, fence, session("S1", 3, cacheSession[12], cacheSession[4]))
	if err != nil || r.Committed != 2 {
		t.Fatalf("commit over a corrupt cache: %+v %v", r, err)
	}
	if st := s.Stats(); st.CacheErrors != 1 {
		t.Fatalf("cache errors = %d, want 1", st.CacheErrors)
	}
	if ok, _ := c.HExists(ctx, k.CacheGuild(shard, "100", ":channels"), "1006").Result(); !ok {
		t.Fatal("the next event's cache change was lost with the corrupt one")
	}
}

// TestCacheChangesCountInHeldBytes: a Writer holds an event's cache changes
// with its data (as large again for a kept dispatch), so the backlog bounds
// count both; they are released once committed.
func TestCacheChangesCountInHeldBytes(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	held := &heldCounter{}
	s := newSink(t, c, WithCache(cacheAll), WithMaxPendingBytes(1<<20, held))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w := openGranted(t, c, s)
	if _, err := srv.Do(ctx, "CLIENT", "PAUSE", "60000", "WRITE"); err != nil {
		t.Fatal(err)
	}
	ev := session("S1", 1, cacheSession[1])[0]
	if err := w.Add(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if n := held.n.Load(); n < int64(2*len(ev.Data))-200 {
		t.Fatalf("Writer holds %d bytes for a %d-byte GUILD_CREATE it caches, want about twice", n, len(ev.Data))
	}
	if _, err := srv.Do(ctx, "CLIENT", "UNPAUSE"); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := held.n.Load(); n != 0 {
		t.Fatalf("counter holds %d bytes after Flush", n)
	}
}

// TestCacheOnCluster: the cache keys, built in the script from the shard's
// prefix, share the slot of the script's declared keys, so Redis Cluster
// runs every change (a cross-slot key would fail each one, counted).
func TestCacheOnCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	c := cl.Client(t)
	s := newCacheSink(t, c, cacheAll)
	shard, fence := Shard{ID: 5, Count: 8}, Fence{"w1", 42}
	grant(t, c, shard, fence)
	if _, err := s.Commit(context.Background(), shard, fence, session("S1", 1, cacheSession...)); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.CacheErrors != 0 {
		t.Fatalf("%d cache changes failed on the cluster", st.CacheErrors)
	}
	checkCache(t, c, shard, cacheAll.Kinds, cacheWant)
}

// TestCacheGuildCreateKeepsLiveChannelsMessages: a new GUILD_CREATE of a
// cached guild keeps the messages of its channels that still exist and drops
// the lists of the others; a message of a channel the cache does not hold
// is not kept (no list the guild's removal could not find).
func TestCacheGuildCreateKeepsLiveChannelsMessages(t *testing.T) {
	c, s, shard, fence := committedCache(t, cacheSession...)
	ctx := context.Background()
	next := len(cacheSession) + 1
	_, err := s.Commit(ctx, shard, fence, session("S1", next,
		dispatch{"GUILD_CREATE", `{"id":"100","name":"back","channels":[{"id":"1001","type":0,"name":"chat","position":1}]}`},
		dispatch{"MESSAGE_CREATE", `{"id":"5010","channel_id":"4242","guild_id":"100","content":"unknown channel"}`}))
	if err != nil {
		t.Fatal(err)
	}
	k := lease.NewKeys(prefix)
	for ch, want := range map[string]int64{"1001": 1, "1006": 0, "4242": 0} {
		if n, err := c.LLen(ctx, k.CacheGuild(shard, "100", ":msgs:"+ch)).Result(); err != nil || n != want {
			t.Errorf("messages of channel %s: %d (%v), want %d", ch, n, err, want)
		}
	}
}
