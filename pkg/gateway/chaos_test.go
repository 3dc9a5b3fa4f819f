package gateway_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// TestGarbageFramesReconnectWithoutPanic injects undecodable messages; each
// must close the connection with a non-1000 code and end in a RESUME, with
// no event lost.
func TestGarbageFramesReconnectWithoutPanic(t *testing.T) {
	cases := []struct {
		name        string
		compression gateway.Compression
		frame       []byte
		binary      bool
	}{
		{"not json", gateway.CompressionNone, []byte(`{"op":0,"s":`), false},
		{"no op", gateway.CompressionNone, []byte(`{"t":"X","s":99,"d":{}}`), false},
		{"wrong types", gateway.CompressionNone, []byte(`{"op":"zero","s":"1"}`), false},
		{"bad hello", gateway.CompressionNone, []byte(`{"op":10,"d":{"heartbeat_interval":-5}}`), false},
		{"ready without session", gateway.CompressionNone, []byte(`{"op":0,"s":1000,"t":"READY","d":{}}`), false},
		{"corrupt zlib", gateway.CompressionZlibStream, []byte{0xde, 0xad, 0xbe, 0xef, 0x12, 0x00, 0x00, 0xff, 0xff}, true},
		{"corrupt zstd", gateway.CompressionZstdStream, []byte{0xde, 0xad, 0xbe, 0xef, 0x12, 0x34}, true},
		{"corrupt zlib payload", gateway.CompressionZlibPayload, []byte{0x78, 0x9c, 0xff, 0xff, 0xff}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newFake(t)
			rec := &recorder{}
			g := newShard(t, s, rec, gateway.WithCompression(tc.compression))
			defer func() {
				if t.Failed() {
					t.Logf("the fake's closes: %+v; resumes: %+v", s.Closes(), s.Resumes())
				}
			}()
			open(t, g)
			s.Dispatch("MESSAGE_CREATE", 0, map[string]int{"n": 1})
			if s.SendRaw(0, tc.frame, tc.binary) != 1 {
				t.Fatal("fake sent no raw frame")
			}
			s.Dispatch("MESSAGE_CREATE", 0, map[string]int{"n": 2})
			eventually(t, "a protocol-error close and a RESUME", func() bool {
				return okResumes(s) == 1 && g.Status() == gateway.StatusReady
			})
			eventually(t, "the fake to record a protocol-error close", func() bool {
				codes := clientCloses(s)
				return len(codes) == 1 && codes[0] == gateway.CloseCodeProtocolError
			})
			s.Dispatch("MESSAGE_CREATE", 0, map[string]int{"n": 3})
			eventually(t, "3 events", func() bool { return rec.count("MESSAGE_CREATE") == 3 })
			checkSequence(t, rec.snapshot()) // RESUMED included: the fake numbers it too
		})
	}
}

// TestSlowHandlerDoesNotDelayHeartbeats blocks the handler for many heartbeat
// intervals; the fake (which closes late heartbeaters) must not close the
// connection, and the client must not think it is a zombie.
func TestSlowHandlerDoesNotDelayHeartbeats(t *testing.T) {
	s := newFake(t, gatewaytest.WithHeartbeatInterval(100*time.Millisecond),
		gatewaytest.WithHeartbeatTimeout(time.Second, gateway.CloseSessionTimedOut))
	release := make(chan struct{})
	handler := func(_ gateway.Gateway, typ gateway.EventType, _ int, _ json.RawMessage) {
		if typ == "MESSAGE_CREATE" {
			<-release
		}
	}
	g := gateway.New(s.Token(), handler, gateway.WithURL(s.GatewayURL()), gateway.WithLogger(testLogger()))
	defer g.Close(context.Background())
	open(t, g)
	for i := range 50 {
		s.Dispatch("MESSAGE_CREATE", 0, map[string]int{"n": i})
	}
	// Let 25 heartbeat intervals (2.5 of the fake's timeouts) pass with the
	// handler stuck: this waits for time to pass, not for a condition.
	time.Sleep(2500 * time.Millisecond)
	close(release)
	if n := len(s.Closes()); n != 0 {
		t.Fatalf("connection closed while the handler was busy: %+v", s.Closes())
	}
	if g.Status() != gateway.StatusReady || g.Latency() <= 0 {
		t.Fatalf("status %s, latency %s", g.Status(), g.Latency())
	}
}

func TestServerHeartbeatRequestIsAnswered(t *testing.T) {
	s := newFake(t, gatewaytest.WithHeartbeatInterval(time.Hour))
	g := newShard(t, s, nil)
	open(t, g)
	if g.Latency() != 0 {
		t.Fatalf("latency %s before any heartbeat", g.Latency())
	}
	s.RequestHeartbeat(0)
	eventually(t, "an ACKed heartbeat", func() bool { return g.Latency() > 0 })
}

func TestRepeatedReconnectRequestsEndReady(t *testing.T) {
	s := newFake(t)
	g := newShard(t, s, nil)
	open(t, g)
	// op 7 three times in a row, some landing on the new connection while it
	// resumes: the shard ends up ready on the same session.
	for range 3 {
		s.SendReconnect(0)
	}
	eventually(t, "ready again", func() bool { return g.Status() == gateway.StatusReady && okResumes(s) >= 1 })
}
