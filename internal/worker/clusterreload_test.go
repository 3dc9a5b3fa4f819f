package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/redistest"
)

// TestClusterClientFollowsAPromotion kills the master of a key's slot: once
// its replica is promoted, a client with the hook reaches the key again well
// before go-redis's 60 s reload timer, while a client without it still dials
// the dead master (the control: without it the test could not tell).
func TestClusterClientFollowsAPromotion(t *testing.T) {
	cl := redistest.StartClusterWithReplicas(t, 3, 1)
	hooked, plain := cl.Client(t), cl.Client(t)
	reloadSlotsOnFailure(hooked)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const key = testPrefix + "k"
	for _, c := range []*redis.ClusterClient{hooked, plain} {
		if err := c.Set(ctx, key, "v", 0).Err(); err != nil { // loads each client's slot map
			t.Fatal(err)
		}
	}
	master, err := cl.MasterOf(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	replica, err := cl.ReplicaOf(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	master.Kill()
	if err := cl.WaitPromoted(ctx, replica); err != nil {
		t.Fatal(err)
	}
	if err := plain.Set(ctx, key, "v", 0).Err(); err == nil {
		t.Fatal("control: go-redis alone followed the promotion; the hook may no longer be needed")
	}
	eventually(t, "the hooked client to write to the promoted replica", 10*time.Second, func() bool {
		return hooked.Set(ctx, key, "w", 0).Err() == nil
	})
	if v, err := replica.Do(ctx, "GET", key); err != nil || v != "w" {
		t.Fatalf("GET on the promoted replica: %v, %v; want the hooked client's write", v, err)
	}
}

// reply is an error reply as go-redis types it (redis.Error), for the ones a
// test server cannot be made to send on demand.
type reply string

func (e reply) Error() string { return string(e) }
func (reply) RedisError()     {}

func TestTopologyMayHaveChanged(t *testing.T) {
	// Real replies from a real server, so that a change in how go-redis types them shows.
	c := redistest.Start(t).Client(t)
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	wrongType := c.LPush(ctx, "k", "x").Err()
	noScript := c.EvalSha(ctx, "0000000000000000000000000000000000000000", nil).Err()
	missing := c.Get(ctx, "absent").Err()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{missing, false},
		{wrongType, false},
		{noScript, false},
		{reply("CLUSTERDOWN The cluster is down"), true},
		{reply("TRYAGAIN Multiple keys request during rehashing of slot"), true},
		{reply("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), true},
		{refused, true},
		{fmt.Errorf("register member: %w", refused), true},
		{context.DeadlineExceeded, true},
		{context.Canceled, false},
		{redis.ErrClosed, false},
	} {
		if got := topologyMayHaveChanged(tc.err); got != tc.want {
			t.Errorf("topologyMayHaveChanged(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
