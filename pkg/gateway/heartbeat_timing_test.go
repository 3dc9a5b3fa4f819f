package gateway_test

import (
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// A silent connection (no dispatches) is kept alive by heartbeats alone, with
// the fake as strict as Discord's documented rule: a client silent for 1.5
// heartbeat intervals is closed with 4009. The client's first beat (jittered
// within one interval of HELLO) and every later one (one interval after the
// previous write) must land in time, on every shard, across several
// intervals. Guards the report of a 4009 from the fake under -sim; the
// interval is 1 s so a loaded CI machine has 500 ms of slack.
func TestHeartbeatsKeepASilentConnectionWithinTheServerTimeout(t *testing.T) {
	const interval = time.Second
	s := newFake(t, gatewaytest.WithHeartbeatInterval(interval),
		gatewaytest.WithHeartbeatTimeout(interval*3/2, gateway.CloseSessionTimedOut))
	const shards = 4
	for id := range shards {
		g := newShard(t, s, nil, gateway.WithShardID(id), gateway.WithShardCount(shards))
		open(t, g)
	}
	end := time.Now().Add(5 * interval)
	for time.Now().Before(end) {
		for _, c := range s.Closes() {
			if !c.FromClient && c.Code == gateway.CloseSessionTimedOut {
				t.Fatalf("shard %d closed 4009 by the fake: a heartbeat came later than 1.5 intervals", c.ShardID)
			}
		}
		time.Sleep(50 * time.Millisecond) // observing for a span: nothing may happen in it
	}
	if st := s.Stats(); st.Connections != shards || st.Resumes != 0 {
		t.Fatalf("fake stats %+v: want %d connections that never reconnected", st, shards)
	}
}
