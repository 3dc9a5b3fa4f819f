package gateway_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/disgoorg/snowflake/v2"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

func TestOpenIdentifiesAndDeliversReadyThenGuilds(t *testing.T) {
	s := newFake(t)
	rec := &recorder{}
	g := newShard(t, s, rec)
	open(t, g)
	if g.Status() != gateway.StatusReady {
		t.Fatalf("status %s after Open, want ready", g.Status())
	}
	if g.SessionID() == nil || g.ResumeURL() == nil || g.LastSequenceReceived() == nil {
		t.Fatalf("state not set after READY: %+v", g.State())
	}
	eventually(t, "READY and 3 GUILD_CREATE", func() bool { return rec.count(gateway.EventTypeGuildCreate) == 3 })
	events := rec.snapshot()
	if events[0].t != gateway.EventTypeReady {
		t.Fatalf("first event %s, want READY", events[0].t)
	}
	checkSequence(t, events)
	if n := len(s.Identifies()); n != 1 {
		t.Fatalf("%d identifies, want 1", n)
	}
}

func TestDispatchesArriveInOrder(t *testing.T) {
	s := newFake(t)
	rec := &recorder{}
	g := newShard(t, s, rec)
	open(t, g)
	for i := range 300 {
		s.Dispatch("MESSAGE_CREATE", 0, map[string]int{"n": i})
	}
	eventually(t, "300 MESSAGE_CREATE", func() bool { return rec.count("MESSAGE_CREATE") == 300 })
	checkSequence(t, rec.snapshot())
}

func TestCompressionModes(t *testing.T) {
	for _, c := range []gateway.Compression{gateway.CompressionNone, gateway.CompressionZlibStream,
		gateway.CompressionZstdStream, gateway.CompressionZlibPayload} {
		t.Run(string(c)+"_", func(t *testing.T) {
			s := newFake(t)
			rec := &recorder{}
			g := newShard(t, s, rec, gateway.WithCompression(c))
			open(t, g)
			big := make([]byte, 3000) // above the fake's per-payload threshold
			for i := range big {
				big[i] = 'a' + byte(i%26)
			}
			for i := range 100 {
				s.Dispatch("MESSAGE_CREATE", 0, map[string]any{"n": i, "content": string(big[:i*30])})
			}
			eventually(t, "100 MESSAGE_CREATE", func() bool { return rec.count("MESSAGE_CREATE") == 100 })
			checkSequence(t, rec.snapshot())
		})
	}
}

func TestSplitFrames(t *testing.T) {
	for _, c := range []gateway.Compression{gateway.CompressionZlibStream, gateway.CompressionZstdStream} {
		t.Run(string(c), func(t *testing.T) {
			s := newFake(t)
			s.SetSplitFrames(4)
			rec := &recorder{}
			g := newShard(t, s, rec, gateway.WithCompression(c))
			open(t, g)
			for i := range 50 {
				s.Dispatch("MESSAGE_CREATE", 0, map[string]int{"n": i})
			}
			eventually(t, "50 MESSAGE_CREATE", func() bool { return rec.count("MESSAGE_CREATE") == 50 })
			checkSequence(t, rec.snapshot())
			if n := len(s.Resumes()); n != 0 {
				t.Fatalf("%d resumes: split frames broke the connection", n)
			}
		})
	}
}

func TestOpenFromRESTBootstrap(t *testing.T) {
	s := newFake(t)
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	g := newShard(t, s, nil, gateway.WithURL(""), gateway.WithAPIURL(s.APIURL()), gateway.WithHTTPClient(client))
	open(t, g)
	if g.Status() != gateway.StatusReady {
		t.Fatalf("status %s", g.Status())
	}
}

func TestSendBeforeReadyIsErrNotReady(t *testing.T) {
	s := newFake(t)
	g := newShard(t, s, nil)
	err := g.Send(context.Background(), gateway.OpPresenceUpdate, gateway.PresenceUpdate{Status: "online"})
	if !errors.Is(err, gateway.ErrNotReady) {
		t.Fatalf("Send before Open: %v, want ErrNotReady", err)
	}
}

func TestOpenTwiceIsErrAlreadyOpen(t *testing.T) {
	s := newFake(t)
	g := newShard(t, s, nil)
	open(t, g)
	if err := g.Open(context.Background()); !errors.Is(err, gateway.ErrAlreadyOpen) {
		t.Fatalf("second Open: %v, want ErrAlreadyOpen", err)
	}
}

func TestInvalidConfigFailsOpenNamingTheField(t *testing.T) {
	cases := []struct {
		field string
		opts  []gateway.ConfigOpt
	}{
		{"ShardID", []gateway.ConfigOpt{gateway.WithShardID(3), gateway.WithShardCount(2)}},
		{"ShardCount", []gateway.ConfigOpt{gateway.WithShardCount(0)}},
		{"LargeThreshold", []gateway.ConfigOpt{gateway.WithLargeThreshold(10)}},
		{"Compression", []gateway.ConfigOpt{gateway.WithCompression("brotli")}},
		{"URL", []gateway.ConfigOpt{gateway.WithURL("http://x")}},
		{"ReconnectBackoffMax", []gateway.ConfigOpt{gateway.WithReconnectBackoff(2, 1)}},
		{"ReservedCommands", []gateway.ConfigOpt{gateway.WithSendRateLimit(3, 1, 3)}},
		{"Logger", []gateway.ConfigOpt{gateway.WithLogger(nil)}},
		{"ReadyTimeout", []gateway.ConfigOpt{gateway.WithReadyTimeout(0)}},
		{"UnreadableRetries", []gateway.ConfigOpt{gateway.WithUnreadableRetries(0)}},
		{"Presence", []gateway.ConfigOpt{gateway.WithPresence(gateway.PresenceUpdate{
			Activities: []gateway.Activity{{Name: string(make([]byte, 5000))}}})}},
	}
	for _, tc := range cases {
		t.Run(tc.field, func(t *testing.T) {
			g := gateway.New("secret-token", nil, append([]gateway.ConfigOpt{gateway.WithURL("ws://127.0.0.1:1")}, tc.opts...)...)
			err := g.Open(context.Background())
			var ce *gateway.ConfigError
			if !errors.As(err, &ce) || ce.Field != tc.field || !errors.Is(err, gateway.ErrInvalidConfig) {
				t.Fatalf("Open: %v, want a ConfigError for %s", err, tc.field)
			}
		})
	}
	g := gateway.New("", nil)
	if err := g.Open(context.Background()); err == nil {
		t.Fatal("empty token accepted")
	}
}

func TestDispatchRoutedByGuildReachesOnlyItsShard(t *testing.T) {
	s := newFake(t)
	rec0, rec1 := &recorder{}, &recorder{}
	g0 := newShard(t, s, rec0, gateway.WithShardID(0), gateway.WithShardCount(2))
	g1 := newShard(t, s, rec1, gateway.WithShardID(1), gateway.WithShardCount(2))
	open(t, g0)
	open(t, g1)
	var gid snowflake.ID
	for _, id := range s.GuildIDs() {
		if (uint64(id)>>22)%2 == 1 {
			gid = id
		}
	}
	if gid == 0 {
		t.Skip("no guild on shard 1")
	}
	s.Dispatch("MESSAGE_CREATE", gid, map[string]string{"guild_id": gid.String()})
	eventually(t, "event on shard 1", func() bool { return rec1.count("MESSAGE_CREATE") == 1 })
	if rec0.count("MESSAGE_CREATE") != 0 {
		t.Fatal("shard 0 got shard 1's event")
	}
}
