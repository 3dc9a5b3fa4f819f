package lease

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
)

// ResolvePartitions returns keys split into the fleet's partition count,
// storing want the first time (0: keyspace.DefaultPartitions for a new fleet;
// a fleet whose Redis holds the single-tag layout of before partitions is a
// one-partition fleet). A want that disagrees with the stored count, or that
// asks a single-tag fleet for more than one partition, is a *ConfigError on
// the field Partitions: the keys of every shard would move.
func ResolvePartitions(ctx context.Context, client redis.UniversalClient, keys Keys, want int) (Keys, error) {
	single := NewKeys(keys.Prefix())
	stored, err := partitionsScript.Run(ctx, client,
		[]string{keys.PartitionCount(), single.Fence(0), single.Events(0)},
		want, keyspace.DefaultPartitions).Text()
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
