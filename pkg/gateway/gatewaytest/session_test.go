package gatewaytest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// sessionOf returns the fake's view of a session.
func sessionOf(t *testing.T, s *Server, id string) SessionInfo {
	t.Helper()
	for _, si := range s.Sessions() {
		if si.ID == id {
			return si
		}
	}
	t.Fatalf("no session %s", id)
	return SessionInfo{}
}

func TestResumeReplaysMissedDispatchesInOrder(t *testing.T) {
	s := startFake(t, WithHeartbeatInterval(time.Minute))
	a := connect(t, s)
	r := a.identify(s, 0, 1) // READY is s=1
	for i := range 3 {
		if n := s.Dispatch("MESSAGE_CREATE", 0, m{"n": i}); n != 1 {
			t.Fatalf("Dispatch reached %d sessions, want 1", n)
		}
		if got := a.nextOp(0, "MESSAGE_CREATE").seq(); got != 2+i {
			t.Fatalf("s=%d, want %d", got, 2+i)
		}
	}
	a.close(4000) // not 1000/1001: the session stays resumable
	poll(t, "session disconnected", func() bool { return !sessionOf(t, s, r.SessionID).Connected })
	for i := 3; i < 8; i++ {
		if n := s.Dispatch("MESSAGE_CREATE", 0, m{"n": i}); n != 1 {
			t.Fatalf("Dispatch to a resumable session reached %d, want 1 (buffered)", n)
		}
	}
	b := dial(t, r.ResumeURL, q10)
	b.nextOp(10, "")
	b.send(resumePayload(s.Token(), r.SessionID, 3)) // the client saw up to s=3 only
	for want := 4; want <= 9; want++ {
		env := b.nextOp(0, "MESSAGE_CREATE")
		var d struct{ N int }
		_ = json.Unmarshal(env.D, &d)
		if env.seq() != want || d.N != want-2 {
			t.Fatalf("replayed s=%d n=%d, want s=%d n=%d", env.seq(), d.N, want, want-2)
		}
	}
	if got := b.nextOp(0, "RESUMED").seq(); got != 10 {
		t.Fatalf("RESUMED s=%d, want 10", got)
	}
	s.Dispatch("MESSAGE_CREATE", 0, m{"n": 8})
	if got := b.nextOp(0, "MESSAGE_CREATE").seq(); got != 11 {
		t.Fatalf("after RESUMED s=%d, want 11", got)
	}
	rs := s.Resumes()
	if len(rs) != 1 || !rs[0].OK || rs[0].Replayed != 6 || rs[0].URLPath != resumeGatewayPx || rs[0].Seq != 3 {
		t.Fatalf("resumes %+v", rs)
	}
	st := s.Stats()
	if st.Resumes != 1 || st.SequenceGaps != 0 || st.LiveSessions != 1 || st.DuplicateSessions != 0 || st.Identifies != 1 {
		t.Fatalf("stats %+v", st)
	}
	ev := s.SentEvents(r.SessionID)
	for i, e := range ev {
		if e.Seq != i+1 {
			t.Fatalf("SentEvents[%d].Seq = %d", i, e.Seq)
		}
	}
	if len(ev) != 11 || ev[0].Type != "READY" || ev[9].Type != "RESUMED" {
		t.Fatalf("SentEvents: %d events, first %q", len(ev), ev[0].Type)
	}
}

func TestResumeOnTheIdentifyURLIsRecorded(t *testing.T) {
	s := startFake(t, WithHeartbeatInterval(time.Minute))
	a := connect(t, s)
	r := a.identify(s, 0, 1)
	a.close(4900)
	b := connect(t, s) // on /gateway, not resume_gateway_url
	b.send(resumePayload(s.Token(), r.SessionID, 1))
	b.nextOp(0, "RESUMED")
	if rs := s.Resumes(); len(rs) != 1 || rs[0].URLPath != gatewayPath {
		t.Fatalf("resumes %+v", rs)
	}
}

func TestResumeFailures(t *testing.T) {
	cases := []struct {
		name   string
		opts   []Option
		before func(t *testing.T, s *Server, a *client)
		seq    int
		unknow bool
		code   int // 0: op 9 false
	}{
		{"after client close 1000", nil, func(t *testing.T, s *Server, a *client) { a.close(1000) }, 1, false, 0},
		{"after client close 1001", nil, func(t *testing.T, s *Server, a *client) { a.close(1001) }, 1, false, 0},
		{"unknown session", nil, func(t *testing.T, s *Server, a *client) { a.close(4000) }, 1, true, 0},
		{"seq ahead of the session", nil, func(t *testing.T, s *Server, a *client) { a.close(4000) }, 5, false, 4007},
		{"past resume timeout", []Option{WithResumeTimeout(20 * time.Millisecond)}, func(t *testing.T, s *Server, a *client) {
			a.close(4000)
			// Let the resume window pass: time passing is what is under test.
			time.Sleep(40 * time.Millisecond)
		}, 1, false, 0},
		{"replay buffer overflowed", []Option{WithReplayBuffer(3)}, func(t *testing.T, s *Server, a *client) {
			a.close(4000)
			for range 5 {
				s.Dispatch("TYPING_START", 0, m{})
			}
		}, 1, false, 0},
		{"invalidated by the server", nil, func(t *testing.T, s *Server, a *client) {
			if s.InvalidateSession(0, false) != 1 {
				t.Fatal("InvalidateSession hit nothing")
			}
			if env := a.nextOp(9, ""); string(env.D) != "false" {
				t.Fatalf("op 9 d=%s", env.D)
			}
		}, 1, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startFake(t, append([]Option{WithHeartbeatInterval(time.Minute)}, tc.opts...)...)
			a := connect(t, s)
			r := a.identify(s, 0, 1)
			tc.before(t, s, a)
			id := r.SessionID
			if tc.unknow {
				id = "0123"
			}
			if tc.name != "invalidated by the server" {
				poll(t, "session disconnected", func() bool { return !sessionOf(t, s, r.SessionID).Connected })
			}
			b := connect(t, s)
			b.send(resumePayload(s.Token(), id, tc.seq))
			if tc.code != 0 {
				b.expectClose(tc.code)
			} else if env := b.nextOp(9, ""); string(env.D) != "false" {
				t.Fatalf("op 9 d=%s, want false", env.D)
			}
			if rs := s.Resumes(); len(rs) != 1 || rs[0].OK {
				t.Fatalf("resumes %+v", rs)
			}
			if st := s.Stats(); st.FailedResumes != 1 || st.Resumes != 0 {
				t.Fatalf("stats %+v", st)
			}
			if !tc.unknow && !sessionOf(t, s, r.SessionID).Ended {
				t.Fatal("session not ended after a failed resume")
			}
		})
	}
}

func TestResumeTakesOverALiveConnection(t *testing.T) {
	s := startFake(t, WithHeartbeatInterval(time.Minute))
	a := connect(t, s)
	r := a.identify(s, 0, 1)
	b := connect(t, s)
	b.send(resumePayload(s.Token(), r.SessionID, 1))
	b.nextOp(0, "RESUMED")
	a.expectClose(4009)
	st := s.Stats()
	if st.DuplicateSessions != 0 || st.LiveSessions != 1 || st.SequenceGaps != 0 {
		t.Fatalf("stats %+v", st)
	}
	// Its record says why, so it is not mistaken for a heartbeat timeout.
	if cl := s.Closes(); len(cl) != 1 || cl[0].Code != 4009 || cl[0].Reason != "session resumed elsewhere" {
		t.Fatalf("closes %+v: want one 4009 for the takeover", cl)
	}
	s.Dispatch("MESSAGE_CREATE", 0, m{})
	b.nextOp(0, "MESSAGE_CREATE")
}

func TestHeartbeatTimeoutKeepsSessionResumable(t *testing.T) {
	s := startFake(t, WithHeartbeatInterval(20*time.Millisecond), WithHeartbeatTimeout(60*time.Millisecond, 4009))
	a := connect(t, s)
	r := a.identify(s, 0, 1)
	a.expectClose(4009) // never heartbeats
	poll(t, "session disconnected", func() bool { return !sessionOf(t, s, r.SessionID).Connected })
	b := connect(t, s)
	b.send(resumePayload(s.Token(), r.SessionID, 1))
	b.nextOp(0, "RESUMED")
	cl := s.Closes()
	if len(cl) == 0 || cl[0].Code != 4009 || cl[0].FromClient || cl[0].ShardID != 0 || cl[0].Reason != "heartbeat timeout" {
		t.Fatalf("closes %+v", cl)
	}
}

func TestHeartbeatsKeepTheConnection(t *testing.T) {
	const timeout = 400 * time.Millisecond
	s := startFake(t, WithHeartbeatInterval(timeout/4), WithHeartbeatTimeout(timeout, 4009))
	a := connect(t, s)
	a.identify(s, 0, 1)
	for i := range 12 { // 12 x timeout/4: three timeouts in total
		time.Sleep(timeout / 4) // the heartbeat interval, as a client would
		a.send(m{"op": 1, "d": i})
		a.nextOp(11, "")
	}
	if n := s.Stats().Connections; n != 1 {
		t.Fatalf("connections %d, want 1", n)
	}
}

func TestDuplicateSessions(t *testing.T) {
	s := startFake(t, WithIdentifyWindow(0), WithHeartbeatInterval(time.Minute))
	a := connect(t, s)
	ra := a.identify(s, 0, 2)
	b := connect(t, s)
	rb := b.identify(s, 0, 2) // same (shard, count): a duplicate
	c := connect(t, s)
	c.identify(s, 0, 3) // another count: not a duplicate
	st := s.Stats()
	if st.DuplicateSessions != 1 || st.LiveSessions != 3 {
		t.Fatalf("stats %+v", st)
	}
	dups := s.Duplicates()
	if len(dups) != 1 || dups[0].ShardID != 0 || dups[0].ShardCount != 2 || dups[0].SessionID != rb.SessionID ||
		len(dups[0].LiveSessionIDs) != 1 || dups[0].LiveSessionIDs[0] != ra.SessionID || !dups[0].Ended.IsZero() {
		t.Fatalf("duplicate records %+v, want one open record of %s beside %s", dups, rb.SessionID, ra.SessionID)
	}
	a.close(1000)
	poll(t, "live sessions 2", func() bool { return s.Stats().LiveSessions == 2 })
	if dups := s.Duplicates(); len(dups) != 1 || dups[0].Ended.Before(dups[0].Time) {
		t.Fatalf("duplicate record not ended when one session was left: %+v", dups)
	}
	d := connect(t, s)
	d.identify(s, 1, 2)
	if st := s.Stats(); st.DuplicateSessions != 1 {
		t.Fatalf("stats %+v", st)
	}
	var overHTTP []DuplicateRecord
	if code := getJSON(t, s.URL()+"/_fake/duplicates", "", &overHTTP); code != 200 {
		t.Fatalf("/_fake/duplicates: status %d", code)
	}
	if len(overHTTP) != 1 || overHTTP[0].SessionID != rb.SessionID {
		t.Fatalf("/_fake/duplicates = %+v", overHTTP)
	}
}

func TestRoutingOverTwoCounts(t *testing.T) {
	const guilds = 12
	s := startFake(t, WithGuilds(guilds), WithIdentifyWindow(0), WithHeartbeatInterval(time.Minute))
	type shard struct{ id, count int }
	shards := []shard{{0, 2}, {1, 2}, {0, 3}, {1, 3}, {2, 3}}
	clients := make([]*client, len(shards))
	for i, sh := range shards {
		clients[i] = connect(t, s)
		r := clients[i].identify(s, sh.id, sh.count)
		if len(r.Guilds) != guilds/sh.count {
			t.Fatalf("shard %v has %d guilds, want %d", sh, len(r.Guilds), guilds/sh.count)
		}
	}
	for _, g := range s.GuildIDs() {
		if n := s.Dispatch("MESSAGE_CREATE", g, MessageCreateData(g, 1)); n != 2 {
			t.Fatalf("guild %d reached %d sessions, want 2 (one per count)", g, n)
		}
	}
	if n := s.Dispatch("DM", 0, m{}); n != 2 {
		t.Fatalf("guild-less dispatch reached %d sessions, want 2 (shard 0 of each count)", n)
	}
	for i, sh := range shards {
		want := guilds / sh.count
		for range want {
			env := clients[i].nextOp(0, "MESSAGE_CREATE")
			var d struct {
				GuildID string `json:"guild_id"`
			}
			_ = json.Unmarshal(env.D, &d)
			var g uint64
			_, _ = fmt.Sscan(d.GuildID, &g)
			if int((g>>22)%uint64(sh.count)) != sh.id {
				t.Fatalf("shard %v got guild %d", sh, g)
			}
		}
		if sh.id == 0 {
			clients[i].nextOp(0, "DM")
		}
	}
	// Nothing more arrived: a heartbeat's ACK is the next payload everywhere.
	for _, c := range clients {
		c.send(m{"op": 1, "d": nil})
		c.nextOp(11, "")
	}
}

func TestSendLimit(t *testing.T) {
	s := startFake(t, WithSendLimit(5, time.Minute), WithHeartbeatInterval(time.Minute))
	c := connect(t, s)
	for range 5 {
		c.send(m{"op": 1, "d": nil})
		c.nextOp(11, "")
	}
	c.send(m{"op": 1, "d": nil})
	c.expectClose(4008)
}

func TestSendLimitWindowSlides(t *testing.T) {
	const window = 40 * time.Millisecond
	s := startFake(t, WithSendLimit(3, window), WithHeartbeatInterval(time.Minute))
	c := connect(t, s)
	for range 3 {
		c.send(m{"op": 1, "d": nil})
		c.nextOp(11, "")
	}
	time.Sleep(window + 10*time.Millisecond) // let the window pass
	for range 3 {
		c.send(m{"op": 1, "d": nil})
		c.nextOp(11, "")
	}
}
