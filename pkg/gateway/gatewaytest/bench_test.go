package gatewaytest

import (
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/disgoorg/snowflake/v2"
)

// benchDispatch measures how fast the fake sends ~850-byte MESSAGE_CREATEs
// to one connection that only counts frames (no decoding): the fake's own
// ceiling, which must stay above what client benchmarks need (150k/s).
func benchDispatch(b *testing.B, compress string) {
	s, err := Listen("127.0.0.1:0", WithGuilds(1), WithHeartbeatInterval(time.Hour), WithReplayBuffer(1024))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	ws, _, err := websocket.Dial(ctx, s.GatewayURL()+q10+compress, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(-1)
	id, _ := json.Marshal(identifyPayload(s.Token(), 0, 1, nil))
	if err := ws.Write(ctx, websocket.MessageText, id); err != nil {
		b.Fatal(err)
	}
	const setup = 3 // HELLO, READY, GUILD_CREATE
	got := make(chan int, 1)
	target := setup + b.N
	go func() {
		n := 0
		buf := make([]byte, 64<<10)
		for n < target {
			_, r, err := ws.Reader(ctx)
			if err != nil {
				break
			}
			if _, err := io.CopyBuffer(io.Discard, r, buf); err != nil {
				break
			}
			n++
		}
		got <- n
	}()
	g := s.GuildIDs()[0]
	events := make([]json.RawMessage, 256)
	for i := range events {
		events[i] = MessageCreateData(g, uint64(i))
	}
	for deadline := time.Now().Add(waitFor); s.Stats().LiveSessions != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("no live session")
		}
	}
	b.SetBytes(int64(len(events[0])))
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		s.dispatch(typMessageCreate, g, events[i%len(events)])
	}
	if n := <-got; n != target {
		b.Fatalf("client read %d frames, want %d", n, target)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

func BenchmarkDispatchPlain(b *testing.B) { benchDispatch(b, "") }
func BenchmarkDispatchZlib(b *testing.B)  { benchDispatch(b, "&compress=zlib-stream") }
func BenchmarkDispatchZstd(b *testing.B)  { benchDispatch(b, "&compress=zstd-stream") }

var sinkID snowflake.ID

func BenchmarkMessageCreateData(b *testing.B) {
	for i := range b.N {
		sinkID += snowflake.ID(len(MessageCreateData(1<<40, uint64(i))))
	}
}

// BenchmarkWorldGuildCreate25k measures the GUILD_CREATE of a guild with
// 25,000 members (5,000 with a presence): building it from the world, and
// applying it to a state by the cache contract's rules (the oracle's cost).
func BenchmarkWorldGuildCreate25k(b *testing.B) {
	s, err := Listen("127.0.0.1:0", WithGuilds(1), WithWorld(World{Seed: 1, Channels: 50, Threads: 10, Roles: 50,
		Emojis: 50, Stickers: 5, Members: 25000, VoiceStates: 200, Presences: 5000}))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	g := s.GuildIDs()[0]
	s.mu.Lock()
	d := s.guildCreateFor(0, g)
	s.mu.Unlock()
	b.Run("encode", func(b *testing.B) {
		gs := s.State().Guilds[g.String()]
		b.SetBytes(int64(len(d)))
		for range b.N {
			sinkID += snowflake.ID(len(encodeGuildCreate(gs)))
		}
	})
	b.Run("apply", func(b *testing.B) {
		b.SetBytes(int64(len(d)))
		for range b.N {
			if err := ApplyDispatch(NewState(0), "GUILD_CREATE", d); err != nil {
				b.Fatal(err)
			}
		}
	})
}
