package gatewaytest

import (
	"testing"
	"time"
)

// SetWithholdReady acts out a stuck gateway node: IDENTIFY and RESUME get no
// answer (no READY, RESUMED or op 9) while heartbeats are still ACKed; the
// IDENTIFY is counted. Switched off, the next command is answered as usual.
func TestWithholdReady(t *testing.T) {
	s := startFake(t, WithGuilds(1), WithIdentifyWindow(0), WithHeartbeatInterval(time.Minute))
	first := connect(t, s)
	r := first.identify(s, 0, 1)
	first.close(4900) // keeps the session resumable
	// The fake notices the close on its own goroutine; until then the
	// first session still counts as live.
	poll(t, "first session detached", func() bool { return s.Stats().LiveSessions == 0 })

	s.SetWithholdReady(true)
	c := connect(t, s)
	c.send(resumePayload(s.Token(), r.SessionID, 0))
	c.send(identifyPayload(s.Token(), 0, 1, nil))
	c.send(m{"op": 1, "d": nil})
	c.nextOp(11, "") // the ACK is the first answer: no replay, RESUMED, READY or op 9 came before it
	if n := len(s.Identifies()); n != 2 {
		t.Fatalf("%d identifies recorded, want 2 (the withheld one counts)", n)
	}
	if len(s.Resumes()) != 0 {
		t.Fatalf("withheld RESUME recorded: %+v", s.Resumes())
	}

	s.SetWithholdReady(false)
	c.identify(s, 0, 1)
	if st := s.Stats(); st.LiveSessions != 1 {
		t.Fatalf("stats %+v: want one live session after the switch is off", st)
	}
}
