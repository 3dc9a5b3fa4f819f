package lease

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/shardfleet/shardfleet/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testConfig is LocalConfig with a discarding logger (set LEASE_TEST_LOG to
// see logs) and the given prefix.
func testConfig(prefix string) Config {
	c := LocalConfig()
	c.Prefix = prefix
	c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return c
}

// newClient is a client whose ctx deadlines bound socket reads.
func newClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newSession starts a session closed (or orphaned) when t ends.
func newSession(t testing.TB, client redis.UniversalClient, cfg Config) *Session {
	t.Helper()
	s, err := NewSession(testCtx(t), client, cfg)
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// endGrace deletes the data-loss grace key, as for a fleet known to be new:
// a fresh Redis looks exactly like one that lost its data, so the first
// session starts the grace.
func endGrace(t testing.TB, client redis.UniversalClient, prefix string) {
	t.Helper()
	if err := client.Del(testCtx(t), NewKeys(prefix).Grace(0)).Err(); err != nil {
		t.Fatalf("end grace: %v", err)
	}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond every few ms until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition against a deadline
	}
}

// startRedis starts a redis-server and returns it with a client.
func startRedis(t testing.TB) (*redistest.Server, *redis.Client) {
	t.Helper()
	srv := redistest.Start(t)
	return srv, newClient(t, srv.Addr())
}

// claimOK claims key or fails the test.
func claimOK(t testing.TB, s *Session, key ShardKey) *Lease {
	t.Helper()
	l, err := s.Claim(testCtx(t), key)
	if err != nil {
		t.Fatalf("claim %v by %s: %v", key, s.ID(), err)
	}
	return l
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
