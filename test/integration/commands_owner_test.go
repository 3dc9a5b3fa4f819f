package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/keyspace"
	fleetclient "github.com/shardfleet/shardfleet/pkg/fleet"
	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// presenceCmd is op 3 with an activity naming the command: "s<shard>-c<i>".
func presenceCmd(shard, i int) fleetclient.Command {
	return fleetclient.Command{Op: gateway.OpPresenceUpdate, D: json.RawMessage(fmt.Sprintf(
		`{"status":"online","activities":[{"name":"s%d-c%d","type":0}],"since":null,"afk":false}`, shard, i))}
}

// commandIndex reads i back from a recorded presenceCmd, or -1.
func commandIndex(r gatewaytest.CommandRecord, shard int) int {
	var d struct {
		Activities []struct{ Name string } `json:"activities"`
	}
	if r.Op != gateway.OpPresenceUpdate || json.Unmarshal(r.D, &d) != nil || len(d.Activities) != 1 {
		return -1
	}
	rest, ok := strings.CutPrefix(d.Activities[0].Name, fmt.Sprintf("s%d-c", shard))
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(rest)
	if err != nil {
		return -1
	}
	return i
}

// queueBurst queues n presenceCmds to each shard of count, interleaved.
func queueBurst(t testing.TB, c *fleetclient.Client, count, n int) map[int][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ids := map[int][]string{}
	for i := range n {
		for s := range count {
			q, err := c.Send(ctx, fleetclient.ToShard(s, count), presenceCmd(s, i))
			if err != nil {
				t.Fatalf("queue command %d of shard %d: %v", i, s, err)
			}
			ids[s] = append(ids[s], q[0].ID)
		}
	}
	return ids
}

// deliveries is what the fake recorded of a burst, per shard.
type deliveries struct {
	first   map[int][]int // shard -> indices in the order first recorded
	repeats map[int]int   // shard -> records of an index already recorded
}

func recordedBurst(recs []gatewaytest.CommandRecord, count int) deliveries {
	d := deliveries{first: map[int][]int{}, repeats: map[int]int{}}
	seen := map[[2]int]bool{}
	for _, r := range recs {
		if r.ShardCount != count {
			continue
		}
		i := commandIndex(r, r.ShardID)
		if i < 0 {
			continue
		}
		if seen[[2]int{r.ShardID, i}] {
			d.repeats[r.ShardID]++
			continue
		}
		seen[[2]int{r.ShardID, i}] = true
		d.first[r.ShardID] = append(d.first[r.ShardID], i)
	}
	return d
}

// checkBurst asserts every shard's n commands were each recorded, in order,
// and reports the repeats.
func checkBurst(t testing.TB, d deliveries, count, n int) int {
	t.Helper()
	repeats := 0
	for s := range count {
		got := d.first[s]
		if len(got) != n {
			t.Errorf("shard %d: %d of %d commands recorded", s, len(got), n)
		}
		for k, i := range got {
			if i != k {
				t.Errorf("shard %d: record %d is command %d: out of order", s, k, i)
				break
			}
		}
		repeats += d.repeats[s]
	}
	return repeats
}

// noRateLimitCloses asserts no 4008 (send rate) and no 4009 (heartbeat
// late) close happened.
func noRateLimitCloses(t testing.TB, fk *fake) {
	t.Helper()
	for _, c := range fk.closes(t) {
		if c.Code == gateway.CloseRateLimited || (c.Code == gateway.CloseSessionTimedOut && c.Reason == "heartbeat timeout") {
			t.Errorf("close %d (%s) on shard %d: the send limiter let a command crowd out Discord's limit or a heartbeat", c.Code, c.Reason, c.ShardID)
		}
	}
}

// sendWindow compresses Discord's 120 payloads per 60 s to 120 per 1 s, on
// both sides, so a burst of 1000 takes seconds.
const sendWindow = time.Second

func commandFake(t testing.TB, shards int) *fleet {
	needBinaries(t)
	return newFleetWithFake(t, shards, startFake(t, shards, 20,
		"-send-limit", "120", "-send-window", sendWindow.String()))
}

var commandWorkerEnv = []string{"GATEWAY_SEND_WINDOW=" + sendWindow.String()}

// TestCommandsBurstPacedInOrder: 1000 commands to one shard are all sent,
// in order, paced under the send limit (no 4008) without delaying a
// heartbeat (no heartbeat-timeout close).
func TestCommandsBurstPacedInOrder(t *testing.T) {
	const n = 1000
	f := commandFake(t, 1)
	w := f.startWorker("w1", commandWorkerEnv...)
	f.waitAllReady("the shard READY")
	queueBurst(t, fleetclient.NewClient(f.client, prefix), 1, n)
	poll(t, "the fake to record 1000 commands", 45*time.Second, func() bool {
		return len(recordedBurst(f.fake.commands(t), 1).first[0]) >= n
	})
	if repeats := checkBurst(t, recordedBurst(f.fake.commands(t), 1), 1, n); repeats != 0 {
		t.Errorf("%d repeats without any owner change", repeats)
	}
	noRateLimitCloses(t, f.fake)
	if st := f.fake.stats(t); st.Identifies != 1 {
		t.Errorf("%d IDENTIFYs, want 1 (no reconnect)", st.Identifies)
	}
	metrics := "http://" + envValue(w.cmd.Env, "HTTP_ADDR") + "/metrics"
	poll(t, "the worker to count 1000 commands sent", 10*time.Second, func() bool {
		return metricValue(httpText(t, metrics), `shardfleet_commands_total{outcome="sent"}`) == n
	})
}

// TestCommandsSurviveOwnerChange: commands queued while the owner of their
// shard is killed (-9), stopped (SIGTERM) or gives it up to a joining worker
// are all sent, in order per shard; repeats happen only across a kill -9
// (at most the commands in flight then: written, not yet confirmed by
// Discord, so still queued) and no two owners send at once (their sends
// would interleave: repeats beyond the bound, or out of order).
func TestCommandsSurviveOwnerChange(t *testing.T) {
	for _, tc := range []struct {
		name string
		// disrupt changes shard 0's owner and returns the repeats allowed.
		disrupt func(f *fleet, owners map[int]string) (maxRepeats int)
	}{
		{"kill -9", func(f *fleet, owners map[int]string) int {
			w := f.workers[owners[0]]
			w.signal(syscall.SIGKILL)
			_ = w.wait(f.t, 10*time.Second) // killed: its exit status says so
			inFlight := 0
			for s := range f.shards {
				inFlight += sentStillQueued(f.t, f.client, keyspace.ShardKey{ID: s, Count: f.shards})
			}
			return inFlight
		}},
		{"SIGTERM", func(f *fleet, owners map[int]string) int {
			f.workers[owners[0]].signal(syscall.SIGTERM)
			return 0
		}},
		{"worker joins", func(f *fleet, _ map[int]string) int {
			f.startWorker("w3", commandWorkerEnv...)
			return 0
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const count, n = 2, 300
			f := commandFake(t, count)
			f.startWorker("w1", commandWorkerEnv...)
			if tc.name != "worker joins" {
				f.startWorker("w2", commandWorkerEnv...)
			}
			owners := f.waitAllReady("every shard READY")
			var wg sync.WaitGroup
			wg.Go(func() { queueBurst(t, fleetclient.NewClient(f.client, prefix), count, n) })
			poll(t, "a tenth of shard 0's commands sent", 20*time.Second, func() bool {
				return len(recordedBurst(f.fake.commands(t), count).first[0]) >= n/10
			})
			disrupted := time.Now()
			maxRepeats := tc.disrupt(f, owners)
			wg.Wait()
			poll(t, "every command recorded", 45*time.Second, func() bool {
				d := recordedBurst(f.fake.commands(t), count)
				return len(d.first[0]) >= n && len(d.first[1]) >= n
			})
			repeats := checkBurst(t, recordedBurst(f.fake.commands(t), count), count, n)
			t.Logf("%s: %d commands per shard, %d repeats (at most %d allowed)", tc.name, n, repeats, maxRepeats)
			if repeats > maxRepeats {
				t.Errorf("%d repeats, want at most %d", repeats, maxRepeats)
			}
			noRateLimitCloses(t, f.fake)
			checkMovedMidBurst(t, f.fake, disrupted, count)
		})
	}
}

// checkMovedMidBurst asserts that a shard changed owner (a RESUME on the new
// one) while its commands flowed: some were recorded before the RESUME and
// some after, so the test saw commands cross the change.
func checkMovedMidBurst(t testing.TB, fk *fake, disrupted time.Time, count int) {
	t.Helper()
	recs := fk.commands(t)
	for _, r := range fk.resumes(t) {
		if !r.OK || r.Time.Before(disrupted) {
			continue
		}
		before, after := 0, 0
		for _, c := range recs {
			if c.ShardID == r.ShardID && c.ShardCount == count {
				if c.Time.Before(r.Time) {
					before++
				} else {
					after++
				}
			}
		}
		if before > 0 && after > 0 {
			t.Logf("shard %d moved at %v with %d commands sent before, %d after", r.ShardID, r.Time.Sub(disrupted).Round(time.Millisecond), before, after)
			return
		}
	}
	t.Errorf("no shard moved while its commands flowed: the test proved nothing")
}
