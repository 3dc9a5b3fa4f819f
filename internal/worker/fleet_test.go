package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/shardfleet/shardfleet/internal/eventsink"
	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/internal/redistest"
	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
	"github.com/shardfleet/shardfleet/pkg/redislimiter"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testPrefix = "{wtest}:"

// fleetHarness is a real redis-server and a fake Discord, with compressed timings.
type fleetHarness struct {
	t     testing.TB
	redis *redistest.Server
	fake  *gatewaytest.Server
}

func newHarness(t testing.TB, shards int, opts ...gatewaytest.Option) *fleetHarness {
	t.Helper()
	h := &fleetHarness{t: t, redis: redistest.Start(t)}
	h.fake = gatewaytest.NewServer(append([]gatewaytest.Option{gatewaytest.WithShards(shards),
		gatewaytest.WithGuilds(4 * shards), gatewaytest.WithIdentifyWindow(60 * time.Millisecond),
		gatewaytest.WithHeartbeatInterval(500 * time.Millisecond)}, opts...)...)
	t.Cleanup(h.fake.Close)
	return h
}

func (h *fleetHarness) config(id string, shards int) Config {
	c := DefaultConfig()
	c.Token = h.fake.Token()
	c.WorkerID = id
	c.Logger = slog.New(slog.NewTextHandler(h.t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	c.Redis = h.redis.Client(h.t)
	c.KeyPrefix = testPrefix
	c.Lease = lease.LocalConfig()
	c.ShardCount, c.MaxConcurrency = shards, 1
	c.IdentifyWindow, c.IdentifyMargin = 60*time.Millisecond, 20*time.Millisecond
	c.APIURL, c.GatewayURL = h.fake.APIURL(), h.fake.GatewayURL()
	c.GatewayOptions = []gateway.ConfigOpt{gateway.WithReconnectBackoff(20*time.Millisecond, 200*time.Millisecond),
		gateway.WithCompression(gateway.CompressionNone)}
	c.ShutdownTimeout = 5 * time.Second
	c.LimiterOptions = []redislimiter.ConfigOpt{redislimiter.WithHoldTTL(2 * time.Second),
		redislimiter.WithPollInterval(50 * time.Millisecond), redislimiter.WithTicketTTL(time.Second)}
	return c
}

// running is a Worker whose Run goroutine the test owns.
type running struct {
	w      *Worker
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func (h *fleetHarness) start(cfg Config) *running {
	h.t.Helper()
	w, err := New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	h.t.Cleanup(func() { r.stop(h.t) })
	return r
}

// stop cancels Run and waits for it (idempotent).
func (r *running) stop(t testing.TB) {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("worker %s: Run: %v", r.w.cfg.WorkerID, err)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("worker %s did not stop", r.w.cfg.WorkerID)
		}
	})
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, with a deadline
	}
}

func readyShards(ws ...*running) int {
	n := 0
	for _, r := range ws {
		for _, s := range r.w.Status().Shards {
			if s.Status == "ready" {
				n++
			}
		}
	}
	return n
}

// checkStreamMatchesFake compares, per session the fake opened, the seqs the
// fake sent with what the stream holds: same seqs, each once, none missing.
func checkStreamMatchesFake(t *testing.T, c redis.UniversalClient, fake *gatewaytest.Server) {
	t.Helper()
	msgs, err := c.XRange(context.Background(), testPrefix+"events", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	inStream := map[string][]int{}
	for _, m := range msgs {
		seq, _ := strconv.Atoi(m.Values["seq"].(string))
		s := m.Values["session"].(string)
		inStream[s] = append(inStream[s], seq)
	}
	total := 0
	for _, sess := range fake.Sessions() {
		var sent []int
		for _, ev := range fake.SentEvents(sess.ID) {
			sent = append(sent, ev.Seq)
		}
		got := inStream[sess.ID]
		if fmt.Sprint(got) != fmt.Sprint(sent) {
			t.Errorf("session %s (shard %d): stream seqs %v, fake sent %v", sess.ID, sess.ShardID, got, sent)
		}
		total += len(sent)
	}
	if total != len(msgs) {
		t.Errorf("stream holds %d events, the fake sent %d", len(msgs), total)
	}
}

// checkStream stops the fake's load, waits until every live session is
// committed, then checks the stream against what the fake sent. The stop is
// final when SetEventsPerSecond returns (no dispatch of a tick under way
// follows it), so the seqs waitCommitted waits for are the last ones.
func (h *fleetHarness) checkStream(t *testing.T) {
	t.Helper()
	h.fake.SetEventsPerSecond(0)
	c := h.redis.Client(t)
	waitCommitted(t, c, h.fake)
	checkStreamMatchesFake(t, c, h.fake)
}

// waitCommitted polls until every live session's record seq reaches the
// fake's last sent seq (the load must be stopped first). A session between
// owners (handed off, not RESUMEd yet) is live too: the fake holds its tail
// for the next owner's RESUME, and skipping it would count that tail as lost.
func waitCommitted(t *testing.T, c redis.UniversalClient, fake *gatewaytest.Server) {
	t.Helper()
	sink, err := eventsink.New(c, eventsink.WithPrefix(testPrefix))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "every session committed", 10*time.Second, func() bool {
		for _, s := range fake.Sessions() {
			if s.Ended {
				continue
			}
			rec, err := sink.Session(context.Background(), eventsink.Shard{ID: s.ShardID, Count: s.ShardCount})
			if err != nil || rec.SessionID != s.ID || rec.Sequence != s.Seq {
				return false
			}
		}
		return true
	})
}

func TestFleetColdStartThenGracefulHandoff(t *testing.T) {
	const shards = 4
	h := newHarness(t, shards, gatewaytest.WithEventsPerSecond(300))
	w1 := h.start(h.config("w1", shards))
	w2 := h.start(h.config("w2", shards))
	eventually(t, "every shard READY", 20*time.Second, func() bool {
		return readyShards(w1, w2) == shards && w1.w.Ready() && w2.w.Ready()
	})
	if st := h.fake.Stats(); st.Identifies != shards || st.IdentifyViolations != 0 || st.DuplicateSessions != 0 {
		t.Fatalf("cold start: %+v; want %d identifies, no violation, no duplicate session", st, shards)
	}

	w1.stop(t) // SIGTERM: hand off, save, release
	eventually(t, "w2 runs every shard", 20*time.Second, func() bool { return readyShards(w2) == shards })
	st := h.fake.Stats()
	if st.Identifies != shards {
		t.Errorf("identifies = %d after a graceful handoff, want %d (RESUME, not IDENTIFY)", st.Identifies, shards)
	}
	if st.Resumes == 0 || st.FailedResumes != 0 || st.DuplicateSessions != 0 || st.IdentifyViolations != 0 {
		t.Errorf("after handoff: %+v", st)
	}
	h.checkStream(t)
	if got := w2.w.m.handoffs; got == nil {
		t.Fatal("no metrics")
	}
}

func TestFleetCrashFailoverResumesFromCommittedSeq(t *testing.T) {
	const shards = 2
	h := newHarness(t, shards, gatewaytest.WithEventsPerSecond(300))
	w1 := h.start(h.config("w1", shards))
	eventually(t, "w1 READY", 20*time.Second, func() bool { return readyShards(w1) == shards })
	waitCommitted(t, h.redis.Client(t), h.fake) // READY committed: the sessions are resumable
	// Crash: the session stops renewing and the process's connections die
	// without a close frame; nothing is handed off.
	w1.w.session.Load().Orphan()
	h.fake.DropConnections(-1)
	w1.once.Do(func() {
		if err := <-w1.done; !errors.Is(err, lease.ErrSessionDone) {
			t.Errorf("Run after the session died: %v, want ErrSessionDone", err)
		}
	})
	w2 := h.start(h.config("w2", shards))
	eventually(t, "w2 took over after the TTL", 20*time.Second, func() bool { return readyShards(w2) == shards })
	st := h.fake.Stats()
	if st.Identifies != shards || st.FailedResumes != 0 || st.IdentifyViolations != 0 {
		t.Errorf("after failover: %+v; want no new IDENTIFY", st)
	}
	h.checkStream(t)
}

func TestFleetInvalidTokenStopsWithoutLoop(t *testing.T) {
	const shards = 2
	h := newHarness(t, shards)
	cfg := h.config("w1", shards)
	cfg.Token = "not-the-token"
	w1 := h.start(cfg)
	eventually(t, "4004 reported", 20*time.Second, func() bool { return errors.Is(w1.w.FatalError(), ErrTokenRejected) })
	eventually(t, "every shard fatal", 20*time.Second, func() bool {
		ss := w1.w.Status().Shards
		for _, s := range ss {
			if s.Status != "fatal" {
				return false
			}
		}
		return len(ss) == shards
	})
	before := h.fake.Stats().Identifies
	time.Sleep(300 * time.Millisecond) // a quiet period: nothing must happen in it
	if after := h.fake.Stats().Identifies; after != before || after > shards {
		t.Fatalf("identifies went %d -> %d: the worker loops on a bad token", before, after)
	}
	if w1.w.Ready() {
		t.Fatal("ready with a rejected token")
	}
}

func TestFleetRejoinsAfterSelfFence(t *testing.T) {
	const shards = 2
	h := newHarness(t, shards, gatewaytest.WithEventsPerSecond(100))
	cfg := h.config("w1", shards)
	cfg.Redis = redis.NewClient(&redis.Options{Addr: h.redis.Addr(), ReadTimeout: 200 * time.Millisecond,
		WriteTimeout: 200 * time.Millisecond, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = cfg.Redis.Close() })
	w1 := h.start(cfg)
	eventually(t, "w1 READY", 20*time.Second, func() bool { return readyShards(w1) == shards && w1.w.Ready() })
	waitCommitted(t, h.redis.Client(t), h.fake)

	h.redis.Pause() // Redis unreachable past the renew deadline: self-fence
	eventually(t, "w1 to self-fence and stop its shards", 20*time.Second, func() bool {
		return !w1.w.Ready() && len(w1.w.Status().Shards) == 0
	})
	h.redis.Resume()
	eventually(t, "w1 back with every shard", 30*time.Second, func() bool { return readyShards(w1) == shards && w1.w.Ready() })
	st := h.fake.Stats()
	if st.Identifies != shards || st.FailedResumes != 0 || st.DuplicateSessions != 0 {
		t.Errorf("after rejoin: %+v; want the shards RESUMEd", st)
	}
	h.checkStream(t)
}

func TestFleetSplitsShardOn4011(t *testing.T) {
	h := newHarness(t, 1, gatewaytest.WithGuilds(12), gatewaytest.WithMaxGuildsPerShard(8))
	w1 := h.start(h.config("w1", 1))
	eventually(t, "shard 0/1 split into 0/2 and 1/2, both READY", 30*time.Second, func() bool {
		ss := w1.w.Status().Shards
		return len(ss) == 2 && ss[0].Count == 2 && ss[1].Count == 2 &&
			ss[0].Status == "ready" && ss[1].Status == "ready"
	})
	layout, err := lease.LoadLayout(context.Background(), h.redis.Client(t), lease.NewKeys(testPrefix))
	if err != nil || len(layout.Shards()) != 2 {
		t.Fatalf("layout = %+v, %v; want 2 shards", layout, err)
	}
	if st := h.fake.Stats(); st.IdentifyViolations != 0 || st.DuplicateSessions != 0 {
		t.Errorf("after split: %+v", st)
	}
}

func TestFleetDiscoversShardCountAndBudget(t *testing.T) {
	h := newHarness(t, 3, gatewaytest.WithSessionStartLimit(500, time.Hour))
	cfg := h.config("w1", 0)
	cfg.MaxConcurrency = 0
	w1 := h.start(cfg)
	eventually(t, "the 3 shards Discord recommends READY", 20*time.Second, func() bool { return readyShards(w1) == 3 })
	layout, err := lease.LoadLayout(context.Background(), h.redis.Client(t), lease.NewKeys(testPrefix))
	if err != nil || layout.Count != 3 {
		t.Fatalf("fleet layout = %+v, %v; want the discovered count 3", layout, err)
	}
	eventually(t, "the budget gauge to count the identifies", 10*time.Second, func() bool {
		var m dto.Metric
		return w1.w.m.budget.Write(&m) == nil && m.GetGauge().GetValue() == 500-3
	})
}

// TestFleetSurvivesRedisDataLoss: redis-server restarts without persistence
// (every key gone). The worker keeps its shards (the lease package re-asserts
// them), keeps their Discord sessions (no IDENTIFY), and events flow into the
// new stream again.
func TestFleetSurvivesRedisDataLoss(t *testing.T) {
	const shards = 2
	h := newHarness(t, shards, gatewaytest.WithEventsPerSecond(100))
	cfg := h.config("w1", shards)
	cfg.Redis = redis.NewClient(&redis.Options{Addr: h.redis.Addr(), ReadTimeout: 200 * time.Millisecond,
		WriteTimeout: 200 * time.Millisecond, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = cfg.Redis.Close() })
	w1 := h.start(cfg)
	eventually(t, "w1 READY", 20*time.Second, func() bool { return readyShards(w1) == shards && w1.w.Ready() })
	h.redis.Restart(t)
	c := h.redis.Client(t)
	eventually(t, "events committed into the new stream", 30*time.Second, func() bool {
		n, err := c.XLen(context.Background(), testPrefix+"events").Result()
		return err == nil && n > 20 && readyShards(w1) == shards
	})
	if st := h.fake.Stats(); st.Identifies != shards || st.DuplicateSessions != 0 || st.IdentifyViolations != 0 {
		t.Errorf("after data loss: %+v; want the sessions kept", st)
	}
	// The cache's kinds went with the data; the worker writes them again
	// (readers without them would take every kind for not kept).
	eventually(t, "the cache's kinds published again", 10*time.Second, func() bool {
		v, err := c.Get(context.Background(), keyspace.NewKeys(testPrefix).CacheKinds()).Result()
		return err == nil && v == cfg.Cache.Kinds.String()
	})
}
