package keyspace

import (
	"fmt"
	"strconv"
	"strings"
)

// A fleet's per-shard keys (leases, session records, command queues, cache)
// and its event streams are split into P partitions, each under its own hash
// tag, so that on Redis Cluster the fleet spreads over the masters instead of
// sitting on the one that serves the fleet's tag. Fleet-wide keys (membership,
// layout, limiter, presence, status, command channel) keep the fleet's tag.
//
// Partition i's tag is searched so that its Cluster slot falls in
// [i*16384/P, (i+1)*16384/P): with the contiguous slot ranges Redis gives
// each master, M masters each carry about P/M partitions. Shard s lives in
// partition s.ID mod P, so the shards of one layout spread evenly, and every
// key of a shard shares its partition's slot: a fenced script touches one
// slot. P=1 is the single-tag layout: partition 0's prefix is the fleet's.

const (
	// ClusterPartitions is the partition count a new fleet on Redis Cluster
	// gets (lease.NewFleetPartitions): 16 spreads evenly (one partition is 6 % of the load) over up
	// to 4 masters and acceptably over 8, while a renew stays 17 small
	// scripts, pipelined.
	ClusterPartitions = 16
	// DefaultPartitions is the partition count of a new fleet that sets none
	// on one Redis node or Sentinel: 1, the single-tag layout, which costs a single Redis nothing (a renew
	// is two scripts) and is the layout of every fleet from before
	// partitions.
	DefaultPartitions = 1
	// MaxPartitions bounds P: a renew runs one script per partition.
	MaxPartitions = 1024
)

// clusterSlots is the number of Redis Cluster hash slots.
const clusterSlots = 16384

// WithPartitions returns the keys of the same fleet split into n partitions
// (1 <= n <= MaxPartitions; the error wraps ErrInvalidPartitions otherwise).
// Changing a fleet's partition count moves every shard's keys: a fleet stores
// its count once (Partitions key) and its workers must agree with it.
func (k Keys) WithPartitions(n int) (Keys, error) {
	if n < 1 || n > MaxPartitions {
		return Keys{}, fmt.Errorf("%w: %d not in [1, %d]", ErrInvalidPartitions, n, MaxPartitions)
	}
	k.parts = partitionPrefixes(k.prefix, n)
	return k, nil
}

// partitionPrefixes builds the n partition prefixes of prefix (which has a
// hash tag: NormalizePrefix put one there).
func partitionPrefixes(prefix string, n int) []string {
	if n == 1 {
		return []string{prefix}
	}
	open := strings.IndexByte(prefix, '{')
	end := open + 1 + strings.IndexByte(prefix[open+1:], '}')
	head, tag, tail := prefix[:open+1], prefix[open+1:end], prefix[end:]
	out := make([]string, n)
	for i := range out {
		lo, hi := i*clusterSlots/n, (i+1)*clusterSlots/n
		for c := 0; ; c++ {
			t := tag + "/" + strconv.Itoa(i) + "-" + strconv.Itoa(c)
			if s := int(Slot(t)); s >= lo && s < hi {
				out[i] = head + t + tail
				break
			}
		}
	}
	return out
}

// Partitions is the fleet's partition count P.
func (k Keys) Partitions() int { return max(1, len(k.parts)) }

// PartitionOf is the partition of shard s: s.ID mod P.
func (k Keys) PartitionOf(s ShardKey) int { return s.ID % k.Partitions() }

// PartitionPrefix is the prefix of partition p's keys (with its own hash tag).
func (k Keys) PartitionPrefix(p int) string {
	if len(k.parts) == 0 {
		return k.prefix
	}
	return k.parts[p]
}

// Slot is the Redis Cluster hash slot of key: CRC16 (XMODEM) of its hash tag
// (or of the whole key when it has none), mod 16384.
func Slot(key string) uint16 {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if end := strings.IndexByte(key[open+1:], '}'); end > 0 {
			key = key[open+1 : open+1+end]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % clusterSlots
}
