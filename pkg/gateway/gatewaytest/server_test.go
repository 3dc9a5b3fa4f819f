package gatewaytest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/shardfleet/shardfleet/internal/testutil"
)

func TestRESTGateway(t *testing.T) {
	s := startFake(t, WithShards(4), WithMaxConcurrency(2), WithSessionStartLimit(10, time.Hour), WithHeartbeatInterval(time.Minute))
	var g struct{ URL string }
	if code := getJSON(t, s.APIURL()+"/gateway", "", &g); code != 200 || g.URL != s.GatewayURL() {
		t.Fatalf("/gateway: %d %+v", code, g)
	}
	var e struct {
		Message string `json:"message"`
		Code    *int   `json:"code"`
	}
	for _, auth := range []string{"", s.Token(), "Bearer " + s.Token(), "Bot wrong"} {
		if code := getJSON(t, s.APIURL()+"/gateway/bot", auth, &e); code != 401 || e.Code == nil {
			t.Fatalf("/gateway/bot with %q: %d %+v, want 401 JSON", auth, code, e)
		}
	}
	var b gatewayBot
	if code := getJSON(t, s.APIURL()+"/gateway/bot", "Bot "+s.Token(), &b); code != 200 {
		t.Fatalf("/gateway/bot: %d", code)
	}
	want := gatewayBot{URL: s.GatewayURL(), Shards: 4, SessionStartLimit: sessionStartLimit{Total: 10, Remaining: 10, ResetAfter: 3600000, MaxConcurrency: 2}}
	if b != want {
		t.Fatalf("/gateway/bot %+v, want %+v", b, want)
	}
	c := connect(t, s)
	c.identify(s, 0, 4)
	getJSON(t, s.APIURL()+"/gateway/bot", "Bot "+s.Token(), &b)
	if b.SessionStartLimit.Remaining != 9 || b.SessionStartLimit.ResetAfter > 3600000 || b.SessionStartLimit.ResetAfter < 3500000 {
		t.Fatalf("after one IDENTIFY: %+v", b.SessionStartLimit)
	}
	// A RESUME does not count.
	r := s.Sessions()[0]
	c.close(4000)
	poll(t, "disconnected", func() bool { return !s.Sessions()[0].Connected })
	d := connect(t, s)
	d.send(resumePayload(s.Token(), r.ID, 1))
	d.nextOp(0, "RESUMED")
	if got := s.Stats().SessionStartRemaining; got != 9 {
		t.Fatalf("remaining %d after a RESUME, want 9", got)
	}
}

func TestRESTRateLimit(t *testing.T) {
	s := startFake(t, func(c *Config) { c.RESTRateLimit = 2 })
	for range 2 {
		if code := getJSON(t, s.APIURL()+"/gateway/bot", "Bot "+s.Token(), nil); code != 200 {
			t.Fatalf("status %d", code)
		}
	}
	var rl struct {
		RetryAfter float64 `json:"retry_after"`
		Global     bool    `json:"global"`
	}
	if code := getJSON(t, s.APIURL()+"/gateway/bot", "Bot "+s.Token(), &rl); code != 429 || !rl.Global || rl.RetryAfter <= 0 || rl.RetryAfter > 1 {
		t.Fatalf("third request: %d %+v, want 429", code, rl)
	}
}

func TestControlAPI(t *testing.T) {
	s := startFake(t, WithGuilds(2), WithHeartbeatInterval(time.Minute))
	c := connect(t, s)
	r := c.identify(s, 0, 1)

	var raw map[string]json.RawMessage
	if code := getJSON(t, s.URL()+"/_fake/stats", "", &raw); code != 200 {
		t.Fatalf("stats: %d", code)
	}
	for _, f := range []string{"identifies", "identify_violations", "resumes", "duplicate_sessions", "live_sessions", "dispatches_sent"} {
		var n int
		if err := json.Unmarshal(raw[f], &n); err != nil {
			t.Fatalf("stats field %s = %s: %v", f, raw[f], err)
		}
	}
	var st Stats
	getJSON(t, s.URL()+"/_fake/stats", "", &st)
	if st.Identifies != 1 || st.LiveSessions != 1 || st.DispatchesSent != 3 {
		t.Fatalf("stats %+v", st)
	}

	post := func(path, body string) map[string]any {
		t.Helper()
		resp, err := noKeepAlive.Post(s.URL()+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != 200 {
			t.Fatalf("POST %s: %d %v", path, resp.StatusCode, out)
		}
		return out
	}
	g := s.GuildIDs()[1]
	if out := post("/_fake/dispatch", `{"t":"MESSAGE_CREATE","guild_id":"`+g.String()+`","d":{"content":"hi"}}`); out["sent"] != 1.0 {
		t.Fatalf("dispatch: %v", out)
	}
	if env := c.nextOp(0, "MESSAGE_CREATE"); string(env.D) != `{"content":"hi"}` {
		t.Fatalf("d = %s", env.D)
	}
	var ev []SentEvent
	if code := getJSON(t, s.URL()+"/_fake/events?session="+r.SessionID, "", &ev); code != 200 || len(ev) != 4 || ev[3].Type != "MESSAGE_CREATE" {
		t.Fatalf("events: %d %+v", code, ev)
	}
	var evd []struct {
		Seq int             `json:"seq"`
		D   json.RawMessage `json:"d"`
	}
	if getJSON(t, s.URL()+"/_fake/events?session="+r.SessionID+"&data=true", "", &evd); len(evd) != 4 || string(evd[3].D) != `{"content":"hi"}` {
		t.Fatalf("events with data: %+v", evd)
	}
	if code := getJSON(t, s.URL()+"/_fake/events?session=nope", "", nil); code != 404 {
		t.Fatalf("events of an unknown session: %d", code)
	}
	for _, p := range []string{"identifies", "resumes", "closes", "sessions", "guilds"} {
		var list []json.RawMessage
		if code := getJSON(t, s.URL()+"/_fake/"+p, "", &list); code != 200 || list == nil {
			t.Fatalf("/_fake/%s: %d %v", p, code, list)
		}
	}
	if out := post("/_fake/reconnect?shard=0", ""); out["hit"] != 1.0 {
		t.Fatalf("reconnect: %v", out)
	}
	c.nextOp(7, "")
	if out := post("/_fake/reconnect?shard=3", ""); out["hit"] != 0.0 {
		t.Fatalf("reconnect of shard 3: %v", out)
	}
	post("/_fake/close?shard=0&code=4000&reason=test", "")
	c.expectClose(4000)
	resp, err := noKeepAlive.Post(s.URL()+"/_fake/close?code=99", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("close with code 99: %d", resp.StatusCode)
	}
}

func TestChaos(t *testing.T) {
	s := startFake(t, WithHeartbeatInterval(time.Minute))
	c := connect(t, s)
	c.identify(s, 0, 1)
	other := connect(t, s) // not identified: only shard -1 reaches it

	if n := s.RequestHeartbeat(0); n != 1 {
		t.Fatalf("RequestHeartbeat hit %d", n)
	}
	c.nextOp(1, "")
	if n := s.InvalidateSession(-1, true); n != 2 {
		t.Fatalf("InvalidateSession(-1) hit %d, want 2", n)
	}
	if env := c.nextOp(9, ""); string(env.D) != "true" {
		t.Fatalf("op 9 d=%s", env.D)
	}
	other.nextOp(9, "")

	s.SetAckHeartbeats(false)
	c.send(m{"op": 1, "d": 1})
	c.send(m{"op": 8, "d": m{"guild_id": "1", "query": "", "limit": 0}})
	// The reader handles payloads in order: had the heartbeat been ACKed, the
	// ACK would come before the members chunk.
	c.nextOp(0, "GUILD_MEMBERS_CHUNK")
	c.send(m{"op": 8, "d": m{"guild_id": "1", "query": "", "limit": 0}})
	c.nextOp(0, "RATE_LIMITED")
	s.SetAckHeartbeats(true)
	c.send(m{"op": 1, "d": 1})
	c.nextOp(11, "")

	if n := s.SendRaw(0, []byte("garbage"), true); n != 1 {
		t.Fatalf("SendRaw hit %d", n)
	}
	_, b, err := c.ws.Read(t.Context())
	if err != nil || string(b) != "garbage" {
		t.Fatalf("raw frame %q %v", b, err)
	}

	if n := s.DropConnections(0); n != 1 {
		t.Fatalf("DropConnections hit %d", n)
	}
	_, err = c.read()
	if err == nil || int(websocketCloseStatus(err)) != -1 {
		t.Fatalf("after a TCP drop: %v, want an error without a close code", err)
	}
	poll(t, "drop recorded", func() bool { return len(s.Closes()) > 0 })
	if cl := s.Closes()[0]; cl.Code != 1006 || cl.FromClient || cl.ShardID != 0 {
		t.Fatalf("close record %+v", cl)
	}
	poll(t, "session detached", func() bool { return !s.Sessions()[0].Connected })
	if si := s.Sessions()[0]; si.Ended {
		t.Fatalf("session after a drop %+v, want resumable", si)
	}
}

func TestCloseDropsConnectionsAndIsIdempotent(t *testing.T) {
	s, err := Listen("127.0.0.1:0", WithHeartbeatInterval(time.Minute), WithEventsPerSecond(100))
	if err != nil {
		t.Fatal(err)
	}
	c := connect(t, s)
	c.identify(s, 0, 1)
	s.Close()
	s.Close()
	for {
		_, err := c.read()
		if err != nil {
			if code := websocketCloseStatus(err); code != -1 {
				t.Fatalf("Close sent close code %d, want a TCP drop", code)
			}
			break
		}
	}
}

func TestEventsPerSecond(t *testing.T) {
	s := startFake(t, WithGuilds(4), WithHeartbeatInterval(time.Minute))
	c := connect(t, s)
	c.identify(s, 0, 1)
	s.SetEventsPerSecond(500)
	for i := range 10 {
		env := c.nextOp(0, "MESSAGE_CREATE")
		if n := len(env.D); n < 700 || n > 1000 {
			t.Fatalf("MESSAGE_CREATE %d is %d bytes, want about 850", i, n)
		}
		var d struct {
			GuildID string `json:"guild_id"`
			Author  struct{ ID string }
			Content string
		}
		if err := json.Unmarshal(env.D, &d); err != nil || d.GuildID == "" || d.Author.ID == "" || d.Content == "" {
			t.Fatalf("MESSAGE_CREATE %s (%v)", env.D, err)
		}
	}
	s.SetEventsPerSecond(0)
	if got := s.EventsPerSecond(); got != 0 {
		t.Fatalf("rate %v", got)
	}
}

// TestStoppedLoadSendsNoMore: once SetEventsPerSecond(0) returns, the load
// dispatches nothing more, not even the rest of a tick's batch under way: a
// harness reads the sessions' final seqs right after it.
func TestStoppedLoadSendsNoMore(t *testing.T) {
	s := startFake(t, WithGuilds(4), WithHeartbeatInterval(time.Minute), WithEventsPerSecond(20000))
	c := connect(t, s)
	c.identify(s, 0, 1)
	done := make(chan struct{})
	go func() { // reads, so that the fake's queue never holds the load back
		defer close(done)
		for {
			if _, err := c.read(); err != nil {
				return
			}
		}
	}()
	poll(t, "the load to flow", func() bool { return s.Sessions()[0].Seq > 1000 })
	s.SetEventsPerSecond(0)
	stopped := s.Sessions()[0].Seq
	s.Close() // waits for the generator to exit
	<-done
	if seq := s.Sessions()[0].Seq; seq != stopped {
		t.Fatalf("seq %d after the load stopped at %d", seq, stopped)
	}
}

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		opt   Option
		field string
	}{
		{WithToken(""), "Token"},
		{WithShards(0), "Shards"},
		{WithMaxConcurrency(0), "MaxConcurrency"},
		{WithHeartbeatInterval(0), "HeartbeatInterval"},
		{WithHeartbeatTimeout(time.Second, 5000), "HeartbeatTimeoutCode"},
		{WithGuilds(-1), "Guilds"},
		{WithAllowedIntents(1 << 17), "AllowedIntents"},
		{WithReplayBuffer(0), "ReplayBuffer"},
		{WithSendLimit(0, time.Second), "SendLimit"},
		{WithEventsPerSecond(-1), "EventsPerSecond"},
		{func(c *Config) { c.WriteTimeout = 0 }, "WriteTimeout"},
		{WithMutationsPerSecond(-1), "MutationsPerSecond"},
		{WithWorld(World{Members: -1}), "World.Members"},
		{WithWorld(World{Messages: maxWorldCount + 1}), "World.Messages"},
		{WithWorld(World{Channels: 3, Members: 1, VoiceStates: 2}), "World.VoiceStates"},
		{WithWorld(World{Members: 5, VoiceStates: 2}), "World.VoiceStates"},
		{WithWorld(World{Presences: 1}), "World.Presences"},
	}
	for _, tc := range cases {
		_, err := Listen("127.0.0.1:0", tc.opt)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("want a ConfigError naming %s, got %v", tc.field, err)
		}
	}
	if _, err := Listen("256.0.0.1:0"); err == nil {
		t.Error("Listen on a bad address succeeded")
	}
	s := startFake(t, WithToken("s3cret-token"))
	if strings.Contains(s.Config().String(), "s3cret") {
		t.Error("Config.String shows the token")
	}
}

// TestTokenNeverLogged runs a session through identify, a bad-token
// identify, resume and closes with debug logging, then looks for the token.
func TestTokenNeverLogged(t *testing.T) {
	const token = "very-secret-token-value"
	var logs testutil.LogBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := startFake(t, WithToken(token), WithLogger(logger), WithIdentifyWindow(0), WithHeartbeatInterval(time.Minute))
	a := connect(t, s)
	r := a.identify(s, 0, 1)
	a.close(4000)
	b := connect(t, s)
	b.send(resumePayload(token, r.SessionID, 1))
	b.nextOp(0, "RESUMED")
	c := connect(t, s)
	c.send(identifyPayload(token+"x", 0, 1, nil))
	c.expectClose(4004)
	s.CloseConnections(-1, 4000, "bye")
	b.expectClose(4000)
	poll(t, "connections gone", func() bool { return s.Stats().Connections == 0 })
	cfg := s.Config()
	for _, out := range []string{logs.String(), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg)} {
		if strings.Contains(out, token) {
			t.Fatalf("token in output: %s", out)
		}
	}
	if !strings.Contains(logs.String(), "shard_id=0") {
		t.Fatalf("connection logs lack shard_id:\n%s", logs.String())
	}
}

func TestRESTErrors(t *testing.T) {
	s := startFake(t)
	var e struct {
		Message string `json:"message"`
	}
	if code := getJSON(t, s.URL()+"/api/v10/nope", "", &e); code != 404 || e.Message == "" {
		t.Fatalf("unknown route: %d %+v", code, e)
	}
	resp, err := noKeepAlive.Post(s.APIURL()+"/gateway/bot", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /gateway/bot: %d", resp.StatusCode)
	}
	if code := getJSON(t, s.URL()+"/gateway?v=10", "", nil); code != http.StatusUpgradeRequired {
		t.Fatalf("plain GET on the gateway: %d, want 426", code)
	}
}

// TestClientCloseIsNotTakenForAnEcho: the client's close frame is recorded
// as the client's whenever its code is not the one the fake sent, even when
// the fake closed the connection (or dropped it) after reading the frame: a
// client that closes with 4902 and RESUMEs at once makes the takeover close
// its old connection with 4009 while the fake's reader is still returning the
// 4902, and the client's close was lost from the record.
func TestClientCloseIsNotTakenForAnEcho(t *testing.T) {
	for _, tc := range []struct {
		code, serverCode, want int
	}{
		{4902, 0, 4902},    // the client closed, the fake did not
		{1000, 0, 1000},    // likewise
		{4009, 4009, -1},   // the client echoed the fake's 4009
		{4902, 4009, 4902}, // the client closed first; a takeover closed after
		{1000, 4009, 1000}, // the two closes crossed
		{4902, -1, 4902},   // the fake dropped TCP after reading the close
	} {
		if got := clientClose(tc.code, tc.serverCode); got != tc.want {
			t.Errorf("clientClose(%d, server %d) = %d, want %d", tc.code, tc.serverCode, got, tc.want)
		}
	}
}

// TestFakeCloseTakenBackWhenTheClientClosedFirst: the fake's close is taken
// back from the record when closing shows that the client's close came
// first, and kept otherwise (it was sent): one close per connection.
func TestFakeCloseTakenBackWhenTheClientClosedFirst(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("failed to close WebSocket: %w", err) }
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"the client echoed the fake's close", nil, false},
		{"already closing on the client's close", wrap(net.ErrClosed), true},
		{"the handshake read the client's own close", wrap(websocket.CloseError{Code: 4902}), true},
		{"the handshake read the fake's code", wrap(websocket.CloseError{Code: 4009}), false},
		{"the client never answered", wrap(context.DeadlineExceeded), false},
		{"the client dropped TCP", wrap(io.EOF), false},
	} {
		if got := clientClosedFirst(tc.err, 4009); got != tc.want {
			t.Errorf("%s: clientClosedFirst(%v, 4009) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
