package lease

import (
	"encoding/binary"
	"hash/fnv"
	"slices"
	"strings"
)

// Assign says which member should own each shard: rendezvous (highest random
// weight) hashing with a load cap of ceil(len(shards)/len(members)).
//
// Every (shard, member) pair gets a score hash(member, shard); pairs are taken
// best score first, and a pair wins when its shard is still unassigned and its
// member is below the cap. Without the cap this is plain HRW (each shard to its
// top-scoring member); the cap only diverts the shards a full member scored
// lowest. The result depends only on the sets of shards and members, not on
// their order; it is deterministic across processes. Duplicates are ignored.
// With no members it returns an empty map.
//
// Cost: O(S*W log(S*W)); 1000 shards over 100 members is ~100k pairs.
func Assign(shards []ShardKey, members []string) map[ShardKey]string {
	shards = uniqueShards(shards)
	members = uniqueMembers(members)
	out := make(map[ShardKey]string, len(shards))
	if len(members) == 0 || len(shards) == 0 {
		return out
	}
	capacity := (len(shards) + len(members) - 1) / len(members)
	type pair struct {
		score uint64
		shard int32
		mem   int32
	}
	pairs := make([]pair, 0, len(shards)*len(members))
	memberSeeds := make([]uint64, len(members))
	for j, m := range members {
		memberSeeds[j] = hashString(m)
	}
	for i, s := range shards {
		for j := range members {
			pairs = append(pairs, pair{score: score(memberSeeds[j], s), shard: int32(i), mem: int32(j)})
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		switch {
		case a.score != b.score:
			if a.score > b.score {
				return -1
			}
			return 1
		case a.mem != b.mem: // ties: break by member name, then shard, both order-free
			return strings.Compare(members[a.mem], members[b.mem])
		default:
			return int(a.shard) - int(b.shard)
		}
	})
	load := make([]int, len(members))
	for _, p := range pairs {
		s := shards[p.shard]
		if _, done := out[s]; done || load[p.mem] >= capacity {
			continue
		}
		out[s] = members[p.mem]
		load[p.mem]++
		if len(out) == len(shards) {
			break
		}
	}
	return out
}

// uniqueShards returns the distinct shards, sorted (the sort makes shard
// indices, used only to break ties, independent of the input order).
func uniqueShards(in []ShardKey) []ShardKey {
	out := slices.Clone(in)
	slices.SortFunc(out, compareShards)
	return slices.Compact(out)
}

func uniqueMembers(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

func hashString(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}

// score mixes a member's seed with a shard through splitmix64's finalizer, so
// that scores of one member across shards are independent enough for HRW.
func score(memberSeed uint64, s ShardKey) uint64 {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(s.ID))
	binary.LittleEndian.PutUint64(b[8:], uint64(s.Count))
	h := fnv.New64a()
	_, _ = h.Write(b[:])
	return mix64(memberSeed ^ mix64(h.Sum64()))
}

func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
