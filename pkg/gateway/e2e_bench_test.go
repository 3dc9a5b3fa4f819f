package gateway_test

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// BenchmarkEndToEndZlibStream sends MESSAGE_CREATE events of about 850 bytes
// from the in-process fake over loopback to one shard with zlib-stream. The
// fake's JSON encoding and compression run in the same process, so this is a
// wall-clock figure for the pair, not a per-core figure for the client (see
// BenchmarkDispatchZlibStream for that).
func BenchmarkEndToEndZlibStream(b *testing.B) {
	s := newFake(b)
	var handled atomic.Int64
	g := gateway.New(s.Token(), func(_ gateway.Gateway, t gateway.EventType, _ int, _ json.RawMessage) {
		if t == "MESSAGE_CREATE" {
			handled.Add(1)
		}
	}, gateway.WithURL(s.GatewayURL()), gateway.WithCompression(gateway.CompressionZlibStream), gateway.WithLogger(testLogger()))
	b.Cleanup(func() { g.Close(b.Context()) })
	open(b, g)
	payload := json.RawMessage(`{"type":0,"tts":false,"timestamp":"2026-11-27T17:00:00.000000+00:00","pinned":false,` +
		`"mentions":[],"mention_roles":[],"mention_everyone":false,"member":{"roles":["1300000000000000001"],"nick":null,` +
		`"mute":false,"joined_at":"2024-01-01T00:00:00.000000+00:00","flags":0,"deaf":false},"id":"1300000000000000002",` +
		`"flags":0,"embeds":[],"edited_timestamp":null,"content":"` + strings.Repeat("hello shard ", 12) + `","components":[],` +
		`"channel_id":"1300000000000000003","author":{"username":"user1","public_flags":0,"id":"1300000000000000004",` +
		`"global_name":"User 1","discriminator":"0","avatar":"0123456789abcdef0123456789abcdef"},"attachments":[],` +
		`"guild_id":"1300000000000000005"}`)
	b.SetBytes(int64(len(payload)) + 40)
	b.ResetTimer()
	for range b.N {
		s.Dispatch("MESSAGE_CREATE", 0, payload)
	}
	for handled.Load() < int64(b.N) {
		if g.Status() != gateway.StatusReady && g.Status() != gateway.StatusResuming {
			b.Fatalf("status %s", g.Status())
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
