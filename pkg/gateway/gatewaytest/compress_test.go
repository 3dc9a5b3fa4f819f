package gatewaytest

import (
	"bytes"
	"testing"
	"time"
)

func TestZlibStream(t *testing.T) {
	s := startFake(t, WithGuilds(3), WithHeartbeatInterval(time.Minute))
	c := dial(t, s.GatewayURL(), q10+"&compress=zlib-stream")
	c.nextOp(10, "")
	c.identify(s, 0, 1)
	s.Dispatch("MESSAGE_CREATE", s.GuildIDs()[0], MessageCreateData(s.GuildIDs()[0], 1))
	c.nextOp(0, "MESSAGE_CREATE")
	if len(c.frames) != 6 {
		t.Fatalf("%d frames for 6 messages", len(c.frames))
	}
	if c.frames[0][0] != 0x78 {
		t.Fatalf("first frame starts %x, want a zlib header", c.frames[0][:2])
	}
	for i, f := range c.frames {
		if !bytes.HasSuffix(f, []byte{0, 0, 0xff, 0xff}) {
			t.Fatalf("frame %d does not end with the sync flush marker", i)
		}
		if i > 0 && f[0] == 0x78 && f[1] == 0x01 {
			t.Fatalf("frame %d starts a new zlib stream", i)
		}
	}
}

func TestZlibStreamSplitFrames(t *testing.T) {
	s := startFake(t, WithHeartbeatInterval(time.Minute))
	s.SetSplitFrames(3)
	c := dial(t, s.GatewayURL(), q10+"&compress=zlib-stream")
	if h := c.nextOp(10, ""); h.Frames != 3 {
		t.Fatalf("HELLO came in %d frames, want 3", h.Frames)
	}
	for i, f := range c.frames {
		if ends := bytes.HasSuffix(f, []byte{0, 0, 0xff, 0xff}); ends != (i == 2) {
			t.Fatalf("frame %d ends with the marker: %v", i, ends)
		}
	}
	c.identify(s, 0, 1)
	s.SetSplitFrames(1)
	c.send(m{"op": 1, "d": 1})
	if ack := c.nextOp(11, ""); ack.Frames != 1 {
		t.Fatalf("ACK came in %d frames after splitting was turned off", ack.Frames)
	}
}

func TestZstdStream(t *testing.T) {
	s := startFake(t, WithGuilds(2), WithHeartbeatInterval(time.Minute))
	s.SetSplitFrames(4) // ignored for zstd-stream: one message per frame
	c := dial(t, s.GatewayURL(), q10+"&compress=zstd-stream")
	c.nextOp(10, "")
	c.identify(s, 0, 1)
	for i := range 20 {
		s.Dispatch("MESSAGE_CREATE", s.GuildIDs()[i%2], MessageCreateData(s.GuildIDs()[i%2], uint64(i)))
		if env := c.nextOp(0, "MESSAGE_CREATE"); env.Frames != 1 {
			t.Fatalf("zstd message in %d frames", env.Frames)
		}
	}
	if len(c.frames) != 24 {
		t.Fatalf("%d frames for 24 messages", len(c.frames))
	}
}

func TestPayloadCompression(t *testing.T) {
	s := startFake(t, WithGuilds(1), WithHeartbeatInterval(time.Minute))
	c := connect(t, s)
	c.send(identifyPayload(s.Token(), 0, 1, m{"compress": true}))
	if r := c.nextOp(0, "READY"); !r.Binary {
		t.Fatal("READY not compressed with compress:true")
	}
	if g := c.nextOp(0, "GUILD_CREATE"); !g.Binary {
		t.Fatal("GUILD_CREATE not compressed with compress:true")
	}
	c.send(m{"op": 1, "d": 2})
	if ack := c.nextOp(11, ""); ack.Binary {
		t.Fatal("a small payload came compressed")
	}
}

func TestTransportCompressionTurnsOffPayloadCompression(t *testing.T) {
	s := startFake(t, WithHeartbeatInterval(time.Minute))
	c := dial(t, s.GatewayURL(), q10+"&compress=zlib-stream")
	c.nextOp(10, "")
	c.send(identifyPayload(s.Token(), 0, 1, m{"compress": true}))
	c.nextOp(0, "READY") // decoded as zlib-stream: not double-compressed
}

// TestZlibStreamStaysValidAcrossIdleRelease: an idle connection gives its
// deflate state back; the next message must continue the same stream.
func TestZlibStreamStaysValidAcrossIdleRelease(t *testing.T) {
	s := startFake(t, WithGuilds(1), WithHeartbeatInterval(time.Minute))
	c := dial(t, s.GatewayURL(), q10+"&compress=zlib-stream")
	c.nextOp(10, "")
	c.identify(s, 0, 1)
	g := s.GuildIDs()[0]
	for i := range 3 {
		time.Sleep(encoderIdle + 50*time.Millisecond) // let the connection go idle
		s.Dispatch("MESSAGE_CREATE", g, MessageCreateData(g, uint64(i)))
		s.Dispatch("MESSAGE_CREATE", g, MessageCreateData(g, uint64(i)))
		c.nextOp(0, "MESSAGE_CREATE")
		c.nextOp(0, "MESSAGE_CREATE")
	}
}
