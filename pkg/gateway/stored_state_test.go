package gateway_test

import (
	"testing"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// A stored session (from Redis, another process) is untrusted input: an
// unusable resume URL must not fail every Open (it did: a ConfigError, so a
// worker retried the shard forever); the session resumes through the gateway
// URL. A negative seq drops the session: the shard identifies.
func TestCorruptStoredStateStillOpens(t *testing.T) {
	s := newFake(t)
	first := newShard(t, s, nil)
	open(t, first)
	st := first.Handoff(t.Context())
	if !st.Resumable() {
		t.Fatalf("Handoff gave %+v: not resumable", st)
	}
	eventually(t, "the handed-off connection to close", func() bool { return len(clientCloses(s)) == 1 })

	for _, bad := range []string{"::not a url::", "http://127.0.0.1:1/gateway", "javascript:alert(1)"} {
		st.ResumeURL = bad
		g := newShard(t, s, nil, gateway.WithShardState(st))
		open(t, g)
		if got := *g.SessionID(); got != st.SessionID {
			t.Fatalf("resume URL %q: session %s, want the stored %s resumed", bad, got, st.SessionID)
		}
		st = g.Handoff(t.Context())
	}
	if n := len(s.Identifies()); n != 1 {
		t.Fatalf("%d identifies, want 1: every corrupt-URL state must resume", n)
	}

	lim := &countingLimiter{}
	st.Sequence = -4
	g := newShard(t, s, nil, gateway.WithShardState(st), gateway.WithIdentifyLimiter(lim))
	open(t, g)
	if *g.SessionID() == st.SessionID || lim.waits.Load() != 1 {
		t.Fatalf("negative seq: session %s (stored %s), %d permits: want a new IDENTIFY", *g.SessionID(), st.SessionID, lim.waits.Load())
	}
}
