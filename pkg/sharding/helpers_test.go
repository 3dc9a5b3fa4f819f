package sharding

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/disgoorg/snowflake/v2"

	"github.com/shardfleet/shardfleet/internal/testutil"
	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// fakeToken is the fake's bot token; no log line may contain it.
const fakeToken = "fake-bot-token-must-never-appear"

// Compressed timings: the fake's identify window is well below the limiter's,
// so a correct limiter never trips it even when the machine is loaded (the
// fake stamps an IDENTIFY when it reads it, which may lag the client's write
// and unlock by tens of ms on a busy 2-core box); without pacing, identifies
// of one key come within a few ms and would all trip it.
const (
	fakeWindow    = 25 * time.Millisecond
	limiterWindow = 75 * time.Millisecond
	limiterMargin = 5 * time.Millisecond
)

func newFake(t testing.TB, opts ...gatewaytest.Option) *gatewaytest.Server {
	t.Helper()
	base := []gatewaytest.Option{
		gatewaytest.WithToken(fakeToken),
		gatewaytest.WithIdentifyWindow(fakeWindow),
		gatewaytest.WithHeartbeatInterval(time.Second),
		gatewaytest.WithResumeTimeout(10 * time.Second),
	}
	s := gatewaytest.NewServer(append(base, opts...)...)
	t.Cleanup(s.Close)
	return s
}

// newTestManager builds a manager on fake with compressed timings. It is
// closed at cleanup, and the logs are checked for the token.
func newTestManager(t testing.TB, fake *gatewaytest.Server, handler gateway.EventHandlerFunc, opts ...ConfigOpt) FleetShardManager {
	t.Helper()
	sink := &testutil.LogBuffer{}
	logger := slog.New(slog.NewTextHandler(sink, &slog.HandlerOptions{Level: slog.LevelDebug}))
	base := []ConfigOpt{
		WithLogger(logger),
		WithAPIURL(fake.APIURL()),
		WithRateLimiterConfigOpt(WithIdentifyWait(limiterWindow), WithIdentifyMargin(limiterMargin)),
		WithGatewayConfigOpts(gateway.WithReconnectBackoff(10*time.Millisecond, 50*time.Millisecond)),
	}
	m, err := NewFleet(fake.Token(), handler, append(base, opts...)...)
	if err != nil {
		t.Fatalf("NewFleet: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m.Close(ctx)
		if strings.Contains(sink.String(), fakeToken) {
			t.Errorf("the token appears in the logs")
		}
	})
	return m
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// received is one test dispatch seen by the handler.
type received struct {
	shardID, shardCount int
	guild               snowflake.ID
}

// eventLog is an EventHandlerFunc that records the test's TEST_EVENT dispatches.
type eventLog struct {
	mu     sync.Mutex
	events []received
}

func (l *eventLog) handle(gw gateway.Gateway, typ gateway.EventType, _ int, data json.RawMessage) {
	if typ != "TEST_EVENT" {
		return
	}
	var d struct {
		GuildID snowflake.ID `json:"guild_id"`
	}
	_ = json.Unmarshal(data, &d)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, received{shardID: gw.ShardID(), shardCount: gw.ShardCount(), guild: d.GuildID})
}

func (l *eventLog) snapshot() []received {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]received(nil), l.events...)
}

// dispatchEvery sends one TEST_EVENT per guild of the fake, checks each reached
// exactly one session (when exact; the fake keeps a session it closed itself
// resumable, buffering events for it), and waits until the handler saw all.
func dispatchEvery(t *testing.T, fake *gatewaytest.Server, log *eventLog, exact bool) []received {
	t.Helper()
	guilds := fake.GuildIDs()
	before := len(log.snapshot())
	for _, g := range guilds {
		if n := fake.Dispatch("TEST_EVENT", g, map[string]string{"guild_id": g.String()}); n < 1 || (exact && n != 1) {
			t.Fatalf("guild %d reached %d sessions, want exactly 1", g, n)
		}
	}
	eventually(t, 5*time.Second, "every dispatch to reach the handler", func() bool {
		return len(log.snapshot()) >= before+len(guilds)
	})
	got := log.snapshot()[before:]
	if len(got) != len(guilds) {
		t.Fatalf("handler got %d events, want %d", len(got), len(guilds))
	}
	return got
}

// countingLimiter counts WaitBucket calls per shard: one per IDENTIFY attempt.
type countingLimiter struct {
	RateLimiter
	mu    sync.Mutex
	waits map[int]int
}

func newCountingLimiter(inner RateLimiter) *countingLimiter {
	return &countingLimiter{RateLimiter: inner, waits: map[int]int{}}
}

func (l *countingLimiter) WaitBucket(ctx context.Context, shardID int) error {
	l.mu.Lock()
	l.waits[shardID]++
	l.mu.Unlock()
	return l.RateLimiter.WaitBucket(ctx, shardID)
}

func (l *countingLimiter) count(shardID int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waits[shardID]
}
