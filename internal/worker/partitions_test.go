package worker

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/internal/redistest"
	"github.com/shardfleet/shardfleet/internal/testutil"
)

// TestFleetOnClusterDefaultsTo16Partitions: a worker on Redis Cluster with
// no partition count set starts a new fleet on 16 partitions, without a
// warning; on a fleet from before partitions (its single-tag layout) it
// adopts 1 and warns, once, that one master carries the fleet.
func TestFleetOnClusterDefaultsTo16Partitions(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	cc := cl.Client(t)
	h := newHarness(t, 1)
	const legacy = "{wlegacy}:"
	if err := cc.Set(context.Background(), lease.NewKeys(legacy).Fence(0), "7", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		prefix string
		parts  int
		warns  int
	}{{testPrefix, keyspace.ClusterPartitions, 0}, {legacy, 1, 1}} {
		cfg := h.config("w1", 1)
		cfg.Redis, cfg.KeyPrefix = cc, c.prefix
		var logs testutil.LogBuffer
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
		r := h.start(cfg)
		eventually(t, c.prefix+": the shard READY", 20*time.Second, func() bool { return readyShards(r) == 1 })
		r.stop(t)
		if n := r.w.keys.Partitions(); n != c.parts {
			t.Errorf("%s: %d partitions, want %d", c.prefix, n, c.parts)
		}
		if n := strings.Count(logs.String(), "one master carries all of it"); n != c.warns {
			t.Errorf("%s: %d warnings of one master, want %d:\n%s", c.prefix, n, c.warns, logs.String())
		}
	}
}
