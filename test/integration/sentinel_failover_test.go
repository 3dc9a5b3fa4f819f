package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/internal/redistest"
)

// Sentinel failovers under load (issue 15): 3 worker processes reach Redis
// through redis+sentinel:// (a master, one replica, 3 sentinels with quorum 2
// and down-after 1 s), 8 shards, the fake sends sentinelLoad events/s. Each
// test is one chaos round (chaosWorld.round): after the fault, every shard
// READY on one worker, no identify violation, duplicate live sessions only
// within chaosDuplicateBound, and the stream on the new master holds every
// dispatch the fake sent exactly once (the tail of a session nobody may
// RESUME excepted, as in the chaos suite).
const (
	sentinelShards  = 8
	sentinelLoad    = 400 // events per second from the fake, about 50 per shard
	sentinelWorkers = 3
	sentinelWarmup  = 2000 // events committed before the fault
)

// newSentinelWorld starts the Sentinel deployment (a master and replicas),
// the fake (sessions not resumed within resumeTimeout end) and the workers,
// and waits until every shard is READY and sentinelWarmup events are in the
// stream.
func newSentinelWorld(t testing.TB, replicas int, resumeTimeout time.Duration) (*chaosWorld, *redistest.Sentinel) {
	t.Helper()
	needBinaries(t)
	d := redistest.StartSentinel(t, replicas)
	fk := startFake(t, sentinelShards, sentinelLoad,
		"-resume-timeout", resumeTimeout.String())
	c := &chaosWorld{
		// fleet.redis is the first master, for workerEnv; the workers get the
		// sentinel URL instead and the test's client follows the sentinels.
		fleet: &fleet{t: t, redis: d.Data[0], client: d.Client(t), fake: fk, shards: sentinelShards,
			token: "itest-token", workers: map[string]*proc{}, cliRedisURL: d.URL()},
		load: sentinelLoad, archive: map[string][]int{},
		mayLoseTail: map[string]string{}, splitKeys: map[lease.ShardKey]time.Time{},
	}
	for range sentinelWorkers {
		c.nextID++
		id := "w" + strconv.Itoa(c.nextID)
		c.startWorkerWith(id, "REDIS_URL="+d.URL(), "EVENT_STREAM_MAXLEN=0")
		c.live = append(c.live, id)
	}
	start := time.Now()
	c.waitHealed("cold start")
	t.Logf("cold start: every shard READY in %v", time.Since(start).Round(time.Millisecond))
	poll(t, fmt.Sprintf("%d events in the stream", sentinelWarmup), 30*time.Second, func() bool {
		n, err := c.client.XLen(context.Background(), prefix+"events").Result()
		return err == nil && n >= sentinelWarmup
	})
	return c, d
}

// sentinelRound runs a chaos round whose fault is cause (it makes the
// sentinels switch and returns the master it replaces), waits for the
// switch, and logs the round's row; on a failed stream check it also logs
// which seqs the new master's stream lacks. Duplicates are allowed within
// chaosDuplicateBound: a worker that misses the switch for longer than its
// renew deadline (its renewals went to the old master, or nowhere) loses its
// leases and self-fences.
func sentinelRound(c *chaosWorld, d *redistest.Sentinel, name string, cause func() string) {
	c.t.Helper()
	rec := c.round(1, chaosFault{name, func(_ *chaosWorld, _ *rand.Rand, r *roundRecord) {
		start := time.Now()
		old := cause()
		now := d.WaitSwitch(c.t, old)
		r.allowDuplicates = true
		r.note = fmt.Sprintf("master %s -> %s, sentinels agreed after %v", old, now, time.Since(start).Round(time.Millisecond))
	}}, nil)
	c.t.Log(rec.row())
	var rollbacks, resumed int
	for _, p := range c.workers {
		rollbacks += linesWith(p, "Redis lost events it had committed")
		resumed += linesWith(p, "shard resumed after the Redis rollback")
	}
	c.t.Logf("workers: %d rollbacks detected, %d shards resumed after one", rollbacks, resumed)
	// Every worker follows the first sentinel to report the switch, not
	// only its own (internal/failover): otherwise the workers write to two
	// masters for up to the sentinels' hello period, and one side's sessions
	// are lost with the old master.
	var first, last time.Time
	for id, p := range c.workers {
		at, ok := firstLineAt(p, "sentinel reported a new master")
		if !ok {
			c.t.Errorf("worker %s never logged that it left the old master", id)
			continue
		}
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	c.t.Logf("workers left the old master within %v of each other", last.Sub(first))
	if c.t.Failed() {
		c.waitCommitted() // round restarted the load
		n, where, _ := missingSeqs(c)
		c.t.Logf("the stream on the new master lacks %d seqs: %s", n, strings.Join(where, "; "))
	}
}

// missingSeqs lists, per session, the seqs up to the last one the fake sent
// that the stream does not hold, and the shards with such seqs. It reads the
// fake before the stream: a dispatch sent in between (a RESUMED, if a shard
// moves meanwhile) is not yet committed, and is no loss.
func missingSeqs(c *chaosWorld) (int, []string, []int) {
	sessions := c.fake.sessions(c.t)
	sentBy := map[string][]int{}
	for _, s := range sessions {
		sentBy[s.ID] = c.fake.sentSeqs(c.t, s.ID)
	}
	inStream, _ := c.streamSeqs()
	total := 0
	var where []string
	var shards []int
	for _, s := range sessions {
		sent := sentBy[s.ID]
		if len(sent) == 0 {
			continue
		}
		have := map[int]bool{}
		for _, seq := range inStream[s.ID] {
			have[seq] = true
		}
		var lost []int
		for seq := 1; seq <= sent[len(sent)-1]; seq++ {
			if !have[seq] {
				lost = append(lost, seq)
			}
		}
		if len(lost) > 0 {
			total += len(lost)
			where = append(where, fmt.Sprintf("shard %d: %d %s", s.ShardID, len(lost), seqRanges(lost)))
			shards = append(shards, s.ShardID)
		}
	}
	return total, where, shards
}

// seqRanges renders sorted seqs as runs: "5..9 12".
func seqRanges(seqs []int) string {
	var runs []string
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		if j == i {
			runs = append(runs, strconv.Itoa(seqs[i]))
		} else {
			runs = append(runs, fmt.Sprintf("%d..%d", seqs[i], seqs[j]))
		}
		i = j + 1
	}
	return strings.Join(runs, " ")
}

// TestSentinelPlannedFailoverLosesNothing: SENTINEL FAILOVER under load.
// Sentinel promotes the replica before it tells the clients; whatever the
// workers commit to the old master meanwhile is dropped when it resyncs from
// the new one, and must be committed again, not lost.
func TestSentinelPlannedFailoverLosesNothing(t *testing.T) {
	c, d := newSentinelWorld(t, 1, chaosResumeTimeout)
	sentinelRound(c, d, "SENTINEL FAILOVER", func() string { return d.Failover(t) })
}

// sentinelLag is how long the lagging sentinels stay stopped after the
// leader reported the switch: the leader's hello period, the longest a
// sentinel that did not lead a failover normally takes to hear of it.
const sentinelLag = 2 * time.Second

// TestSentinelFailoverWhileTwoSentinelsLag: a planned failover that only the
// sentinel leading it reports for 2 s, the other two stopped (SIGSTOP)
// before it and resumed sentinelLag after its switch: the condition of the
// CI run that lost 1,282 events (followers that hear of the switch late),
// made certain. go-redis picks one sentinel per worker at random, so in most
// runs some workers' go-redis follows a stopped one. They must all move to
// the new master on the leader's report, not when the others catch up.
// (The stream check alone does not tell: a worker whose
// sentinel is stopped, rather than alive and behind, stalls on its next dial
// instead of writing on to the old master, so the losses of the CI run need
// sentinels that answer with the old master, which this test cannot make.)
func TestSentinelFailoverWhileTwoSentinelsLag(t *testing.T) {
	c, d := newSentinelWorld(t, 1, chaosResumeTimeout)
	lead, lagging := d.Sentinels[0], d.Sentinels[1:]
	sentinelRound(c, d, "SENTINEL FAILOVER, 2 sentinels lag", func() string {
		for _, s := range lagging {
			s.Pause()
			t.Cleanup(s.Resume)
		}
		old := d.Failover(t) // sent to d.Sentinels[0]
		poll(t, "the leading sentinel to name a new master", 30*time.Second, func() bool {
			addr, err := d.MasterAddrAt(context.Background(), lead)
			return err == nil && addr != old
		})
		time.AfterFunc(sentinelLag, func() {
			for _, s := range lagging {
				s.Resume()
			}
		})
		return old
	})
	for id, p := range c.workers {
		if line := firstLineWith(p, "sentinel reported a new master"); !strings.Contains(line, "sentinel="+lead.Addr()) {
			t.Errorf("worker %s did not leave the old master on the report of %s, the only sentinel that knew: %q",
				id, lead.Addr(), line)
		}
	}
}

// TestSentinelMasterKill9LosesNothing: kill -9 of the master under load; the
// old master is not restarted, the replica takes over after down-after (1 s)
// and an election.
func TestSentinelMasterKill9LosesNothing(t *testing.T) {
	c, d := newSentinelWorld(t, 1, chaosResumeTimeout)
	sentinelRound(c, d, "master kill -9", func() string { return d.KillMaster(t) })
}

// firstLineAt is the time= of the first line of p's log that holds needle.
func firstLineAt(p *proc, needle string) (time.Time, bool) {
	_, rest, ok := strings.Cut(firstLineWith(p, needle), "time=")
	if !ok {
		return time.Time{}, false
	}
	stamp, _, _ := strings.Cut(rest, " ")
	at, err := time.Parse(time.RFC3339Nano, stamp)
	return at, err == nil
}

// firstLineWith is the first line of p's log that holds needle, "" if none.
func firstLineWith(p *proc, needle string) string {
	if lines := matchingLines(p, needle); len(lines) > 0 {
		return lines[0]
	}
	return ""
}
