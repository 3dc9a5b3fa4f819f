package member

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/redistest"
)

// TestNewSentinelClientReachesTheMaster: the client writes to the master the
// sentinels name, and Close ends its sentinel subscriptions (goleak).
func TestNewSentinelClientReachesTheMaster(t *testing.T) {
	d := redistest.StartSentinel(t, 0)
	c := NewSentinelClient(&redis.FailoverOptions{MasterName: d.Name, SentinelAddrs: d.Addrs()}, nil)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET through the Sentinel client: %v", err)
	}
	if got, err := d.Master(t).Client(t).Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET k on the master = %q, %v; want v", got, err)
	}
}
