package gatewaytest

import (
	"sync"
	"testing"
)

func TestGuildsSpreadEvenlyForAnyCount(t *testing.T) {
	for n := 0; n <= 40; n++ {
		s := &Server{guilds: makeGuilds(n)}
		for count := 1; count <= 9; count++ {
			total := 0
			for shard := range count {
				got, want := s.guildsOnShard(shard, count), len(s.guildsOf(shard, count))
				if got != want {
					t.Fatalf("%d guilds, shard %d/%d: guildsOnShard %d, listed %d", n, shard, count, got, want)
				}
				if lo := n / count; got < lo || got > lo+1 {
					t.Fatalf("%d guilds, shard %d/%d holds %d: not even", n, shard, count, got)
				}
				total += got
			}
			if total != n {
				t.Fatalf("%d guilds over %d shards: %d routed", n, count, total)
			}
		}
	}
}

func TestShardOf(t *testing.T) {
	if shardOf(0, 5) != 0 {
		t.Fatal("guild-less events must go to shard 0")
	}
	// Discord's example: (guild_id >> 22) % num_shards.
	const g = 197038439483310086
	if got, want := shardOf(g, 3), int((uint64(g)>>22)%3); got != want {
		t.Fatalf("shardOf = %d, want %d", got, want)
	}
}

func TestRequestGuildMembersValidation(t *testing.T) {
	s := startFake(t, WithIdentifyWindow(0))
	for _, d := range []m{
		{"query": "", "limit": 0},     // no guild_id
		{"guild_id": "1", "limit": 0}, // neither query nor user_ids
		{"guild_id": "1", "query": "", "limit": 0, "nonce": "123456789012345678901234567890123"}, // nonce > 32 bytes
	} {
		c := connect(t, s)
		c.identify(s, 0, 1)
		c.send(m{"op": 8, "d": d})
		c.expectClose(4001)
	}
}

// TestSequenceGapSelfCheck: the fake counts a gap if its own logic ever
// sends seqs out of order on a connection (clients cannot cause one).
func TestSequenceGapSelfCheck(t *testing.T) {
	s := &Server{cfg: DefaultConfig(), log: DefaultConfig().Logger}
	c := &conn{wake: make(chan struct{}, 1)}
	c.qcond = sync.NewCond(&c.qmu)
	ss := &session{id: "s", conn: c, ring: newEventRing(8)}
	for _, seq := range []int{1, 2, 4, 5} {
		s.sendOnConn(ss, &SentEvent{Seq: seq, Type: "X", Data: []byte("{}")}, nil)
	}
	if s.stats.SequenceGaps != 1 || s.stats.DispatchesSent != 4 {
		t.Fatalf("gaps %d sent %d, want 1 and 4", s.stats.SequenceGaps, s.stats.DispatchesSent)
	}
}
