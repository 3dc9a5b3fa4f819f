package gateway_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// faultCounter is a FrameFaultHook that counts by kind.
type faultCounter struct {
	mu     sync.Mutex
	counts map[gateway.FrameFault]int
}

func (f *faultCounter) hook(_ int, kind gateway.FrameFault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.counts == nil {
		f.counts = map[gateway.FrameFault]int{}
	}
	f.counts[kind]++
}

func (f *faultCounter) get(kind gateway.FrameFault) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[kind]
}

// check fails unless the counts are exactly want.
func (f *faultCounter) check(t *testing.T, want map[gateway.FrameFault]int) {
	t.Helper()
	for _, k := range gateway.FrameFaults {
		if got := f.get(k); got != want[k] {
			t.Errorf("%s faults: %d, want %d", k, got, want[k])
		}
	}
}

// rawDispatch is a dispatch frame as SendRaw sends it (plain JSON: the shard
// must use no transport compression).
func rawDispatch(seq int, typ, d string) []byte {
	return fmt.Appendf(nil, `{"op":0,"s":%d,"t":%q,"d":%s}`, seq, typ, d)
}

// sendRaw sends frame to shard 0's one connection.
func sendRaw(t *testing.T, s *gatewaytest.Server, frame []byte) {
	t.Helper()
	if n := s.SendRaw(0, frame, false); n != 1 {
		t.Fatalf("raw frame reached %d connections, want 1", n)
	}
}

// openRawShard opens a shard without transport compression (so that SendRaw
// frames are read as they are), counting its frame faults, and waits for its
// guilds.
func openRawShard(t *testing.T) (*gatewaytest.Server, *recorder, *faultCounter, gateway.Gateway) {
	t.Helper()
	s := newFake(t)
	rec, faults := &recorder{}, &faultCounter{}
	g := newShard(t, s, rec, gateway.WithCompression(gateway.CompressionNone),
		gateway.WithFrameFaultHook(faults.hook))
	open(t, g)
	eventually(t, "the guilds", func() bool { return rec.count("GUILD_CREATE") == 3 })
	return s, rec, faults, g
}

// TestSeqJumpIsHealedByResumeReplay: a dispatch whose s skips two numbers is
// neither delivered nor trusted; the RESUME that follows replays the missing
// events, so the handler sees every seq once, in order, and never the jump.
func TestSeqJumpIsHealedByResumeReplay(t *testing.T) {
	s, rec, faults, g := openRawShard(t)
	last := *g.LastSequenceReceived()
	sendRaw(t, s, rawDispatch(last+3, "MESSAGE_CREATE", `{"jump":true}`))
	for i := range 2 { // last+1, last+2: queued behind the jump, so only the replay delivers them
		s.Dispatch("MESSAGE_CREATE", 0, map[string]int{"n": i})
	}
	eventually(t, "RESUMED", func() bool { return rec.count(gateway.EventTypeResumed) == 1 })
	for i := 2; i < 4; i++ {
		s.Dispatch("MESSAGE_CREATE", 0, map[string]int{"n": i})
	}
	eventually(t, "4 events", func() bool { return rec.count("MESSAGE_CREATE") == 4 })
	events := rec.snapshot()
	checkSequence(t, events)
	for _, e := range events {
		if strings.Contains(string(e.data), "jump") {
			t.Fatalf("the jumping dispatch was delivered: %+v", e)
		}
	}
	if okResumes(s) != 1 || s.Resumes()[0].Seq != last {
		t.Fatalf("resumes %+v: want one from seq %d", s.Resumes(), last)
	}
	faults.check(t, map[gateway.FrameFault]int{gateway.FrameFaultSeqGap: 1})
}

// TestSameSeqJumpAfterReplayIsAccepted: when the first dispatch after the
// RESUME jumps to the same s again, Discord means it: it is delivered and the
// seq raised, with one RESUME in all (no loop).
func TestSameSeqJumpAfterReplayIsAccepted(t *testing.T) {
	s, rec, faults, g := openRawShard(t)
	const jump = 999999999
	sendRaw(t, s, rawDispatch(jump, "MESSAGE_CREATE", `{"jump":1}`))
	eventually(t, "RESUMED", func() bool { return rec.count(gateway.EventTypeResumed) == 1 })
	sendRaw(t, s, rawDispatch(jump, "MESSAGE_CREATE", `{"jump":2}`))
	eventually(t, "the jump to be delivered", func() bool { return rec.count("MESSAGE_CREATE") == 1 })
	if got := *g.LastSequenceReceived(); got != jump {
		t.Fatalf("last seq %d, want %d", got, jump)
	}
	if e := rec.snapshot(); string(e[len(e)-1].data) != `{"jump":2}` {
		t.Fatalf("delivered %s, want the second jump", e[len(e)-1].data)
	}
	if n, codes := len(s.Resumes()), clientCloses(s); n != 1 || len(codes) != 1 || len(s.Identifies()) != 1 {
		t.Fatalf("%d resumes, client closes %v, %d identifies: want one RESUME after one close", n, codes, len(s.Identifies()))
	}
	faults.check(t, map[gateway.FrameFault]int{gateway.FrameFaultSeqGap: 1, gateway.FrameFaultSeqGapAccepted: 1})
}

// TestMalformedDispatchesAreDropped: dispatches without t, with invalid UTF-8,
// or with a seq that is missing, not positive or going backwards are neither
// delivered nor a reason to reconnect; a dropped dispatch whose s is the next
// one still advances the seq, so the next good dispatch is no gap.
func TestMalformedDispatchesAreDropped(t *testing.T) {
	s, rec, faults, g := openRawShard(t)
	last := *g.LastSequenceReceived()
	for _, frame := range [][]byte{
		fmt.Appendf(nil, `{"op":0,"s":%d,"d":{"bad":"no t"}}`, last+1),
		fmt.Appendf(nil, `{"op":0,"s":%d,"t":"MESSAGE_CREATE","d":{"bad":"%s"}}`, last+2, "\xff\xfe"),
		fmt.Appendf(nil, `{"op":0,"s":%d,"t":"MESSAGE_CR%sATE","d":{}}`, last+3, "\xc3"),
		rawDispatch(-5, "MESSAGE_CREATE", `{"bad":"negative s"}`),
		rawDispatch(0, "MESSAGE_CREATE", `{"bad":"zero s"}`),
		rawDispatch(last+1, "MESSAGE_CREATE", `{"bad":"backwards"}`),
		[]byte(`{"op":0,"t":"MESSAGE_CREATE","d":{"bad":"no s"}}`),
		rawDispatch(last+4, "MESSAGE_CREATE", `{"good":true}`),
	} {
		sendRaw(t, s, frame)
	}
	eventually(t, "the good dispatch", func() bool { return rec.count("MESSAGE_CREATE") == 1 })
	events := rec.snapshot()
	if e := events[len(events)-1]; e.seq != last+4 || string(e.data) != `{"good":true}` || len(events) != int(last)+1 {
		t.Fatalf("delivered %d events, last %+v: want only the good one after the guilds", len(events), e)
	}
	if got := *g.LastSequenceReceived(); got != last+4 {
		t.Fatalf("last seq %d, want %d", got, last+4)
	}
	if len(s.Resumes()) != 0 || len(clientCloses(s)) != 0 {
		t.Fatalf("resumes %+v, client closes %v: a dropped dispatch must not reconnect", s.Resumes(), clientCloses(s))
	}
	faults.check(t, map[gateway.FrameFault]int{gateway.FrameFaultNoType: 1, gateway.FrameFaultInvalidUTF8: 2,
		gateway.FrameFaultBadSeq: 4})
}

// TestUnreadableMessageEndsSessionAfterRetries: a dispatch over ReadLimit,
// compressed or not, is replayed by every RESUME; after UnreadableRetries
// RESUMEs the shard gives the session up and IDENTIFYs once, then works.
func TestUnreadableMessageEndsSessionAfterRetries(t *testing.T) {
	const limit, retries = 64 << 10, 3
	for _, c := range []gateway.Compression{gateway.CompressionNone, gateway.CompressionZlibStream, gateway.CompressionZstdStream} {
		t.Run(string(c)+"_", func(t *testing.T) {
			s := newFake(t)
			rec, faults := &recorder{}, &faultCounter{}
			g := newShard(t, s, rec, gateway.WithCompression(c), gateway.WithReadLimit(limit),
				gateway.WithUnreadableRetries(retries), gateway.WithFrameFaultHook(faults.hook))
			open(t, g)
			first := *g.SessionID()
			s.Dispatch("MESSAGE_CREATE", 0, map[string]string{"big": strings.Repeat("a", 2*limit)})
			eventually(t, "a new session", func() bool {
				id := g.SessionID()
				return id != nil && *id != first && g.Status() == gateway.StatusReady
			})
			s.Dispatch("MESSAGE_CREATE", 0, map[string]int{"n": 1})
			eventually(t, "an event on the new session", func() bool { return rec.count("MESSAGE_CREATE") == 1 })
			if n, ids := okResumes(s), len(s.Identifies()); n != retries || len(s.Resumes()) != retries || ids != 2 {
				t.Fatalf("resumes %+v, %d identifies: want %d resumes that replayed, then one IDENTIFY", s.Resumes(), ids, retries)
			}
			for _, r := range s.Resumes() {
				if r.Replayed < 1 {
					t.Fatalf("resume %+v did not replay the big message", r)
				}
			}
			faults.check(t, map[gateway.FrameFault]int{gateway.FrameFaultUnreadable: retries, gateway.FrameFaultSessionAbandoned: 1})
		})
	}
}
