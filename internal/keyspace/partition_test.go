package keyspace

import (
	"errors"
	"testing"
)

// TestPartitionSlotsSpread: partition i's slot lies in the i-th of P equal
// slot ranges, so contiguous per-master slot ranges carry P/M partitions each.
func TestPartitionSlotsSpread(t *testing.T) {
	for _, prefix := range []string{"", "app", "x:{tag}:y:"} {
		for _, n := range []int{2, 3, ClusterPartitions, 100, MaxPartitions} {
			k, err := NewKeys(prefix).WithPartitions(n)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for i := range n {
				pp := k.PartitionPrefix(i)
				lo, hi := i*clusterSlots/n, (i+1)*clusterSlots/n
				if s := int(Slot(pp + "events")); s < lo || s >= hi {
					t.Fatalf("prefix %q, P=%d: partition %d (%q) has slot %d, want [%d, %d)", prefix, n, i, pp, s, lo, hi)
				}
				if seen[pp] {
					t.Fatalf("prefix %q, P=%d: partition prefix %q twice", prefix, n, pp)
				}
				seen[pp] = true
			}
		}
	}
}

// TestOnePartitionIsTheSingleTagLayout: with P=1 every key is the one a fleet
// had before partitions, so such a fleet keeps running on its keys.
func TestOnePartitionIsTheSingleTagLayout(t *testing.T) {
	k, err := NewKeys("{f}:").WithPartitions(1)
	if err != nil {
		t.Fatal(err)
	}
	s := ShardKey{ID: 5, Count: 8}
	for got, want := range map[string]string{
		k.Lease(s): "{f}:lease:8:5", k.Session(s): "{f}:session:8:5", k.Commands(s): "{f}:cmdq:8:5",
		k.ShardEvents(s): "{f}:events", k.ShardMember(s, "w"): "{f}:member:w", k.Fence(0): "{f}:fence",
		k.PartitionEpoch(0): "{f}:epoch", k.Grace(0): "{f}:grace",
	} {
		if got != want {
			t.Errorf("key %q, want %q", got, want)
		}
	}
}

// TestShardKeysShareOneSlot: every key of a shard (and its partition's stream
// and member mirror) is in one slot, so a fenced script touches one slot.
func TestShardKeysShareOneSlot(t *testing.T) {
	k, err := NewKeys("").WithPartitions(ClusterPartitions)
	if err != nil {
		t.Fatal(err)
	}
	for id := range 40 {
		s := ShardKey{ID: id, Count: 40}
		want := Slot(k.Lease(s))
		for _, key := range []string{k.Session(s), k.Commands(s), k.ShardEvents(s), k.ShardMember(s, "w1"),
			k.CacheGuild(s, "1", CacheSuffixMembers), k.CacheShardGuilds(s),
			k.Fence(k.PartitionOf(s)), k.PartitionEpoch(k.PartitionOf(s)), k.Grace(k.PartitionOf(s))} {
			if Slot(key) != want {
				t.Fatalf("shard %v: %q is in slot %d, its lease in %d", s, key, Slot(key), want)
			}
		}
	}
	if k.PartitionOf(ShardKey{ID: 17, Count: 40}) != 1 {
		t.Fatal("shard 17 is not in partition 17 mod 16")
	}
}

func TestSlotMatchesRedis(t *testing.T) {
	// Values from CLUSTER KEYSLOT on redis-server 7.0.
	for key, want := range map[string]uint16{"foo": 12182, "{user1000}.following": 3443, "{}x": 10595, "bar": 5061, "{shardfleet}:x": 12330} {
		if got := Slot(key); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
	}
}

func TestWithPartitionsRange(t *testing.T) {
	for _, n := range []int{0, -1, MaxPartitions + 1} {
		if _, err := NewKeys("").WithPartitions(n); !errors.Is(err, ErrInvalidPartitions) {
			t.Errorf("WithPartitions(%d) = %v, want ErrInvalidPartitions", n, err)
		}
	}
}
