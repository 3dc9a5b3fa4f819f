package integration

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/redistest"
)

// BenchmarkSentinelFailover: what a planned SENTINEL FAILOVER costs the
// fleet of the Sentinel tests (3 workers, 8 shards, 400 events/s), one
// deployment per iteration, with Redis' asynchronous replication as it is
// and with min-replicas-to-write 1 (min-replicas-max-lag 2) set on every data
// server, as a deployment's config files would:
//
//	go test -run '^$' -bench SentinelFailover -benchtime 1x -v ./test/integration
//
// Figures, from the new master's stream (entry IDs are its clock) and the
// fake's records:
//   - ms-stall: the longest time after the failover began in which no
//     commit that survived reached the stream, fleet-wide;
//   - ms-shard-stall: the same for the worst shard;
//   - lost: seqs the fake sent that the stream lacks;
//   - ms-heal: from the switch until every shard has committed again;
//   - identifies: sessions started afresh (a RESUME is not counted).
//
// The fake keeps unresumed sessions for 2 minutes, as Discord does for
// minutes, so that a long stall shows as a stall, not as ended sessions.
func BenchmarkSentinelFailover(b *testing.B) {
	for _, bc := range []struct {
		name        string
		replicas    int
		minReplicas bool
	}{
		{"async", 1, false},
		{"min-replicas-to-write=1", 1, true},
		{"min-replicas-to-write=1,2-replicas", 2, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var sum failoverCost
			for range b.N {
				c := sentinelFailoverCost(b, bc.replicas, bc.minReplicas)
				b.Logf("%+v", c)
				sum.stall += c.stall
				sum.shardStall += c.shardStall
				sum.heal += c.heal
				sum.lost += c.lost
				sum.identifies += c.identifies
			}
			n := float64(b.N)
			b.ReportMetric(float64(sum.stall.Milliseconds())/n, "ms-stall")
			b.ReportMetric(float64(sum.shardStall.Milliseconds())/n, "ms-shard-stall")
			b.ReportMetric(float64(sum.heal.Milliseconds())/n, "ms-heal")
			b.ReportMetric(float64(sum.lost)/n, "lost")
			b.ReportMetric(float64(sum.identifies)/n, "identifies")
		})
	}
}

type failoverCost struct {
	stall, shardStall, heal time.Duration
	lost, identifies        int
}

// sentinelFailoverCost runs one planned failover and measures it.
func sentinelFailoverCost(b *testing.B, replicas int, minReplicas bool) failoverCost {
	c, d := newSentinelWorld(b, replicas, 2*time.Minute)
	ctx := context.Background()
	if minReplicas {
		for _, s := range d.Data {
			if _, err := s.Do(ctx, "CONFIG", "SET", "min-replicas-to-write", "1", "min-replicas-max-lag", "2"); err != nil {
				b.Fatalf("CONFIG SET on %s: %v", s.Addr(), err)
			}
		}
	}
	before := c.fake.stats(b)
	began := time.Now()
	d.WaitSwitch(b, d.Failover(b))
	switched := time.Now()
	poll(b, "every shard to commit again after the switch", 90*time.Second, func() bool {
		return c.shardsCommittedSince(switched) == c.shards
	})
	cost := failoverCost{heal: time.Since(switched)}
	c.noteFailedResumes()
	c.waitCommitted()
	var where []string
	var shards []int
	cost.lost, where, shards = missingSeqs(c)
	if cost.lost > 0 {
		b.Logf("the stream lacks %s; the workers' lines on those shards and errors:\n%s\nthe fake's RESUMEs and closes of those shards:\n%s",
			strings.Join(where, "; "), c.shardLines(shards), c.fakeRecords(shards))
	}
	cost.identifies = c.fake.stats(b).Identifies - before.Identifies
	cost.stall, cost.shardStall = c.streamStalls(began)
	if len(c.mayLoseTail) > 0 {
		b.Logf("sessions that could not be resumed: %v", c.mayLoseTail)
	}
	return cost
}

// shardLines are the workers' log lines about the shards, and their errors.
func (c *chaosWorld) shardLines(shards []int) string {
	var out []string
	for id, p := range c.workers {
		for line := range strings.Lines(p.out.String()) {
			if strings.Contains(line, "level=ERROR") || slices.ContainsFunc(shards, func(s int) bool {
				return strings.Contains(line, fmt.Sprintf("shard_id=%d ", s))
			}) {
				out = append(out, id+": "+strings.TrimSpace(line))
			}
		}
	}
	return strings.Join(out, "\n")
}

// fakeRecords are the fake's RESUMEs and closes of the shards.
func (c *chaosWorld) fakeRecords(shards []int) string {
	var out []string
	for _, r := range c.fake.resumes(c.t) {
		if slices.Contains(shards, r.ShardID) {
			out = append(out, fmt.Sprintf("%s RESUME shard %d seq %d replayed %d ok %v", r.Time.Format("15:04:05.000"),
				r.ShardID, r.Seq, r.Replayed, r.OK))
		}
	}
	for _, r := range c.fake.closes(c.t) {
		if slices.Contains(shards, r.ShardID) {
			out = append(out, fmt.Sprintf("%s close shard %d code %d from client %v %s", r.Time.Format("15:04:05.000"),
				r.ShardID, r.Code, r.FromClient, r.Reason))
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// shardsCommittedSince counts the shards with a stream entry after t.
func (c *chaosWorld) shardsCommittedSince(t time.Time) int {
	msgs, err := c.client.XRange(context.Background(), prefix+"events", strconv.FormatInt(t.UnixMilli(), 10), "+").Result()
	if err != nil {
		return 0 // the new master may refuse while it has no replica: keep polling
	}
	shards := map[string]bool{}
	for _, m := range msgs {
		shards[fmt.Sprint(m.Values["shard"])] = true
	}
	return len(shards)
}

// streamStalls reads the stream and returns the longest gaps between
// consecutive entries ending after since: fleet-wide and for the worst shard.
func (c *chaosWorld) streamStalls(since time.Time) (fleet, shard time.Duration) {
	msgs, err := c.client.XRange(context.Background(), prefix+"events", "-", "+").Result()
	if err != nil {
		c.t.Fatalf("read the stream: %v", err)
	}
	var prev time.Time
	prevOf := map[string]time.Time{}
	for _, m := range msgs {
		at := entryTime(c.t, m)
		s := fmt.Sprint(m.Values["shard"])
		if at.After(since) {
			if !prev.IsZero() {
				fleet = max(fleet, at.Sub(prev))
			}
			if p, ok := prevOf[s]; ok {
				shard = max(shard, at.Sub(p))
			}
		}
		prev, prevOf[s] = at, at
	}
	return fleet, shard
}

// entryTime is a stream entry's time: the milliseconds part of its ID.
func entryTime(t testing.TB, m redis.XMessage) time.Time {
	ms, _, _ := strings.Cut(m.ID, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		t.Fatalf("stream entry ID %q: %v", m.ID, err)
	}
	return time.UnixMilli(n)
}

// BenchmarkCommitWait: what WAIT 1 would add to every commit. One client
// XADDs a dispatch-sized entry to a master with one replica, one entry at a
// time, alone or followed by WAIT 1 in the same round trip (a pipeline): the
// difference is the wait for the replica's acknowledgement.
//
//	go test -run '^$' -bench CommitWait -benchtime 5000x -count 3 ./test/integration
func BenchmarkCommitWait(b *testing.B) {
	d := redistest.StartSentinel(b, 1)
	c := d.Master(b).Client(b)
	ctx := context.Background()
	data := strings.Repeat("x", 300)
	for _, wait := range []bool{false, true} {
		name := "xadd"
		if wait {
			name = "xadd+wait-1"
		}
		b.Run(name, func(b *testing.B) {
			seq := 0
			for b.Loop() {
				seq++
				pipe := c.Pipeline()
				pipe.XAdd(ctx, &redis.XAddArgs{Stream: "bench", Values: []any{"seq", seq, "data", data}})
				var acked *redis.Cmd
				if wait {
					acked = pipe.Do(ctx, "WAIT", 1, 1000)
				}
				if _, err := pipe.Exec(ctx); err != nil {
					b.Fatal(err)
				}
				if acked != nil {
					if n, _ := acked.Int(); n != 1 {
						b.Fatalf("WAIT 1: %d replicas acknowledged", n)
					}
				}
			}
		})
	}
}
