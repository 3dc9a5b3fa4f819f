package lease

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
)

// ResolvePartitions returns keys split into the fleet's partition count,
// storing want the first time (0: NewFleetPartitions(client) for a new fleet;
// a fleet whose Redis holds the single-tag layout of before partitions is a
// one-partition fleet). A stored count always wins: a want that disagrees
// with it, or that asks a single-tag fleet for more than one partition, is a
// *ConfigError on the field Partitions: the keys of every shard would move.
// Every reader and writer of a fleet (workers, pkg/fleet, `worker cache`)
// resolves through here, so they agree on the count.
func ResolvePartitions(ctx context.Context, client redis.UniversalClient, keys Keys, want int) (Keys, error) {
	single := NewKeys(keys.Prefix())
	stored, err := partitionsScript.Run(ctx, client,
		[]string{keys.PartitionCount(), single.Fence(0), single.Events(0)},
		want, NewFleetPartitions(client)).Text()
	if keyspace.IsRefusal(err, "SINGLETAG") {
		return Keys{}, &ConfigError{Package: "lease", Field: "Partitions", Reason: fmt.Sprintf(
			"%d: this fleet's Redis holds the single-tag layout of before partitions (%sfence or %sevents "+
				"exists, no partition count stored), which is the layout of 1 partition: leave the setting "+
				"unset or set 1 to keep running it, or start a partitioned fleet under a new prefix",
			want, keys.Prefix(), keys.Prefix())}
	}
	if err != nil {
		return Keys{}, fmt.Errorf("read the fleet's partition count: %w", err)
	}
	n, err := strconv.Atoi(stored)
	if err != nil {
		return Keys{}, fmt.Errorf("read the fleet's partition count: %w: %q", ErrCorrupt, stored)
	}
	if want != 0 && n != want {
		return Keys{}, &ConfigError{Package: "lease", Field: "Partitions", Reason: fmt.Sprintf(
			"%d, but the fleet stores %d partitions (%s): a fleet's partition count never changes; "+
				"set %d or leave it unset", want, n, keys.PartitionCount(), n)}
	}
	out, err := keys.WithPartitions(n)
	if err != nil {
		return Keys{}, fmt.Errorf("the fleet's partition count: %w: %w", ErrCorrupt, err)
	}
	return out, nil
}

// NewFleetPartitions is the partition count a new fleet that sets none gets
// on client: keyspace.ClusterPartitions on Redis Cluster, so that the fleet
// spreads over the masters, and keyspace.DefaultPartitions (1) on one node or
// Sentinel, where more partitions would only cost round trips. Redis Cluster
// is a *redis.ClusterClient (what redis.NewUniversalClient builds for
// several addresses or IsClusterMode) that learns its slots from the cluster:
// one with a ClusterSlots function (NewFailoverClusterClient, Sentinel with
// RouteByLatency/RouteRandomly, or a hand-made slot map) routes over servers
// without cluster mode, so it gets 1.
func NewFleetPartitions(client redis.UniversalClient) int {
	if cc, ok := client.(*redis.ClusterClient); ok && cc.Options().ClusterSlots == nil {
		return keyspace.ClusterPartitions
	}
	return keyspace.DefaultPartitions
}
