package gatewaytest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

func TestHelloIdentifyReady(t *testing.T) {
	s := startFake(t, WithGuilds(10), WithHeartbeatInterval(time.Minute))
	c := dial(t, s.GatewayURL(), q10)
	hello := c.nextOp(10, "")
	var hd struct {
		Interval int `json:"heartbeat_interval"`
	}
	if err := json.Unmarshal(hello.D, &hd); err != nil || hd.Interval != 60000 {
		t.Fatalf("HELLO d %s: interval %d, want 60000 (%v)", hello.D, hd.Interval, err)
	}
	c.send(identifyPayload(s.Token(), 0, 1, nil))
	ready := c.nextOp(0, "READY")
	if ready.seq() != 1 {
		t.Fatalf("READY s=%d, want 1", ready.seq())
	}
	var r readyInfo
	if err := json.Unmarshal(ready.D, &r); err != nil {
		t.Fatal(err)
	}
	if r.V != 10 || r.SessionID == "" || r.ResumeURL != s.ResumeGatewayURL() || len(r.Shard) != 2 ||
		!r.User.Bot || r.Application.ID == "" {
		t.Fatalf("READY %s", ready.D)
	}
	if r.ResumeURL == s.GatewayURL() {
		t.Fatal("resume_gateway_url must differ from the gateway URL")
	}
	if len(r.Guilds) != 10 {
		t.Fatalf("READY lists %d guilds, want 10", len(r.Guilds))
	}
	for i, g := range r.Guilds {
		if !g.Unavailable {
			t.Fatalf("guild %d not unavailable in READY", i)
		}
		gc := c.nextOp(0, "GUILD_CREATE")
		if gc.seq() != i+2 {
			t.Fatalf("GUILD_CREATE %d has s=%d, want %d", i, gc.seq(), i+2)
		}
		var g2 struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(gc.D, &g2)
		if g2.ID != g.ID {
			t.Fatalf("GUILD_CREATE %d for %s, want %s", i, g2.ID, g.ID)
		}
	}
	c.send(m{"op": 1, "d": 11})
	c.nextOp(11, "")
	st := s.Stats()
	if st.Identifies != 1 || st.LiveSessions != 1 || st.Connections != 1 || st.SessionStartRemaining != 999 {
		t.Fatalf("stats %+v", st)
	}
	ids := s.Identifies()
	if len(ids) != 1 || ids[0].SessionID != r.SessionID || ids[0].Violation {
		t.Fatalf("identifies %+v", ids)
	}
}

func TestIdentifyWithoutShardOmitsItAndAcceptsBotPrefix(t *testing.T) {
	s := startFake(t)
	c := connect(t, s)
	c.send(m{"op": 2, "d": m{"token": "Bot " + s.Token(), "intents": 1, "properties": m{}}})
	var r readyInfo
	if err := json.Unmarshal(c.nextOp(0, "READY").D, &r); err != nil {
		t.Fatal(err)
	}
	if r.Shard != nil {
		t.Fatalf("READY echoed shard %v though IDENTIFY sent none", r.Shard)
	}
}

// TestCloseCodes drives each check to the close code Discord sends.
func TestCloseCodes(t *testing.T) {
	ident := func(shard []int, extra m) m {
		p := identifyPayload("test-token", 0, 1, extra)
		p["d"].(m)["shard"] = shard
		return p
	}
	cases := []struct {
		name  string
		opts  []Option
		query string
		send  []any // payloads (m) or raw strings
		code  int
		fatal bool
	}{
		{"bad token", nil, q10, []any{identifyPayload("nope", 0, 1, nil)}, 4004, true},
		{"second identify", nil, q10, []any{identifyPayload("test-token", 0, 1, nil), identifyPayload("test-token", 0, 1, nil)}, 4005, false},
		{"resume after identify", nil, q10, []any{identifyPayload("test-token", 0, 1, nil), resumePayload("test-token", "x", 1)}, 4005, false},
		{"presence before identify", nil, q10, []any{m{"op": 3, "d": m{"status": "online", "afk": false, "since": nil, "activities": []any{}}}}, 4003, false},
		{"undocumented intent", nil, q10, []any{identifyPayload("test-token", 0, 1, m{"intents": 1 << 17})}, 4013, true},
		{"negative intents", nil, q10, []any{identifyPayload("test-token", 0, 1, m{"intents": -1})}, 4013, true},
		{"missing intents", nil, q10, []any{m{"op": 2, "d": m{"token": "test-token", "properties": m{}}}}, 4013, true},
		{"privileged intent not allowed", []Option{WithAllowedIntents(gateway.IntentsNonPrivileged)}, q10,
			[]any{identifyPayload("test-token", 0, 1, m{"intents": int(gateway.IntentMessageContent)})}, 4014, true},
		{"shard id = count", nil, q10, []any{ident([]int{2, 2}, nil)}, 4010, true},
		{"shard count 0", nil, q10, []any{ident([]int{0, 0}, nil)}, 4010, true},
		{"shard negative", nil, q10, []any{ident([]int{-1, 2}, nil)}, 4010, true},
		{"shard not a pair", nil, q10, []any{ident([]int{0}, nil)}, 4010, true},
		{"shard count not the multiple", []Option{WithShardCountMultiple(16)}, q10, []any{ident([]int{0, 8}, nil)}, 4010, true},
		{"too many guilds", []Option{WithGuilds(10), WithMaxGuildsPerShard(4)}, q10, []any{ident([]int{0, 2}, nil)}, 4011, true},
		{"api version 8", nil, "?v=8&encoding=json", nil, 4012, true},
		{"api version missing", nil, "?encoding=json", nil, 4012, true},
		{"etf encoding", nil, "?v=10&encoding=etf", nil, 4002, false},
		{"unknown compress", nil, "?v=10&encoding=json&compress=gzip", nil, 4002, false},
		{"op 5", nil, q10, []any{m{"op": 5, "d": nil}}, 4001, false},
		{"unknown op", nil, q10, []any{m{"op": 99, "d": nil}}, 4001, false},
		{"receive-only op", nil, q10, []any{m{"op": 11, "d": nil}}, 4001, false},
		{"missing op", nil, q10, []any{m{"d": nil}}, 4001, false},
		{"identify d not an object", nil, q10, []any{m{"op": 2, "d": "token"}}, 4001, false},
		{"heartbeat d a string", nil, q10, []any{m{"op": 1, "d": "7"}}, 4001, false},
		{"garbage", nil, q10, []any{"{not json"}, 4002, false},
		{"oversize", nil, q10, []any{`{"op":1,"d":null,"x":"` + strings.Repeat("a", 4100) + `"}`}, 4002, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startFake(t, append([]Option{WithHeartbeatInterval(time.Minute)}, tc.opts...)...)
			c := dial(t, s.GatewayURL(), tc.query)
			if tc.send != nil {
				c.nextOp(10, "")
			}
			for _, p := range tc.send {
				if raw, ok := p.(string); ok {
					c.sendRaw([]byte(raw))
				} else {
					c.send(p)
				}
			}
			c.expectClose(tc.code)
			poll(t, "close recorded", func() bool { return len(s.Closes()) > 0 })
			if got := s.Stats().FatalCloses; (got == 1) != tc.fatal {
				t.Fatalf("fatal_closes %d, want fatal=%v", got, tc.fatal)
			}
			if cl := s.Closes()[0]; cl.Code != tc.code || cl.FromClient {
				t.Fatalf("close record %+v, want server close %d", cl, tc.code)
			}
		})
	}
}

func TestExactly4096BytesIsAccepted(t *testing.T) {
	s := startFake(t, WithHeartbeatInterval(time.Minute))
	c := connect(t, s)
	p := `{"op":1,"d":null,"x":"`
	p += strings.Repeat("a", 4096-len(p)-2) + `"}`
	if len(p) != 4096 {
		t.Fatalf("payload is %d bytes", len(p))
	}
	c.sendRaw([]byte(p))
	c.nextOp(11, "")
}

func TestIdentifyPacingPerKey(t *testing.T) {
	s := startFake(t, WithMaxConcurrency(2), WithIdentifyWindow(time.Hour), WithHeartbeatInterval(time.Minute))
	a := connect(t, s)
	a.identify(s, 0, 4) // key 0
	b := connect(t, s)
	b.identify(s, 1, 4) // key 1: its own window
	c := connect(t, s)
	c.send(identifyPayload(s.Token(), 2, 4, nil)) // key 0 again, within the window
	if inv := c.nextOp(9, ""); string(inv.D) != "false" {
		t.Fatalf("op 9 d=%s, want false", inv.D)
	}
	st := s.Stats()
	if st.Identifies != 3 || st.IdentifyViolations != 1 || st.LiveSessions != 2 {
		t.Fatalf("stats %+v", st)
	}
	ids := s.Identifies()
	if len(ids) != 3 || ids[2].Key != 0 || !ids[2].Violation || ids[2].SessionID != "" || ids[1].Key != 1 || ids[1].Violation {
		t.Fatalf("identifies %+v", ids)
	}
}

func TestIdentifyAfterWindowIsNoViolation(t *testing.T) {
	const window = 30 * time.Millisecond
	s := startFake(t, WithIdentifyWindow(window), WithHeartbeatInterval(time.Minute))
	a := connect(t, s)
	a.identify(s, 0, 2)
	first := s.Identifies()[0].Time
	b := connect(t, s)
	// Let the window pass (time passing is the point here, not a condition).
	time.Sleep(time.Until(first.Add(window + 5*time.Millisecond)))
	b.identify(s, 1, 2)
	if st := s.Stats(); st.IdentifyViolations != 0 || st.Identifies != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSessionStartLimitResetsToken(t *testing.T) {
	s := startFake(t, WithSessionStartLimit(1, time.Hour), WithIdentifyWindow(0), WithHeartbeatInterval(time.Minute))
	a := connect(t, s)
	a.identify(s, 0, 1)
	if got := s.Stats().SessionStartRemaining; got != 0 {
		t.Fatalf("remaining %d, want 0", got)
	}
	b := connect(t, s)
	b.send(identifyPayload(s.Token(), 0, 1, nil))
	b.expectClose(4004)
	a.expectClose(4004)
	st := s.Stats()
	if !st.TokenRevoked || st.TokenResets != 1 || st.LiveSessions != 0 {
		t.Fatalf("stats %+v", st)
	}
	if code := getJSON(t, s.APIURL()+"/gateway/bot", "Bot "+s.Token(), nil); code != 401 {
		t.Fatalf("/gateway/bot after token reset: %d, want 401", code)
	}
	s.RestoreToken()
	c := connect(t, s)
	c.identify(s, 0, 1)
}

func TestReadyEchoesAPIVersion9(t *testing.T) {
	s := startFake(t, WithHeartbeatInterval(time.Minute))
	c := dial(t, s.GatewayURL(), "?v=9&encoding=json")
	c.nextOp(10, "")
	if r := c.identify(s, 0, 1); r.V != 9 {
		t.Fatalf("READY v=%d, want 9", r.V)
	}
}
