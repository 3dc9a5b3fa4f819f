package lease

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// A corrupt layout key (a bad version, or a key of the wrong type) must not
// fail the member renew: that would self-fence every worker of the fleet. The
// renew goes on (a member that joins afterwards shows up in the view) and the
// session stays alive.
func TestRenewSurvivesCorruptLayout(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt func(ctx context.Context, c *redis.Client, key string) error
	}{
		{"bad version", func(ctx context.Context, c *redis.Client, key string) error {
			return c.HSet(ctx, key, "version", "x", "data", "{garbage").Err()
		}},
		{"wrong type", func(ctx context.Context, c *redis.Client, key string) error {
			return c.Set(ctx, key, "not a hash", 0).Err()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, client := startRedis(t)
			ctx := testCtx(t)
			cfg := testConfig("")
			a := newSession(t, client, cfg)
			if _, err := a.SetLayoutIfAbsent(ctx, 4); err != nil {
				t.Fatalf("set layout: %v", err)
			}
			if err := client.Del(ctx, a.Keys().Layout()).Err(); err != nil {
				t.Fatal(err)
			}
			if err := tc.corrupt(ctx, client, a.Keys().Layout()); err != nil {
				t.Fatal(err)
			}
			b := newSession(t, client, cfg)
			eventually(t, 10*cfg.RenewInterval+cfg.RenewDeadline, "a's renew to see b join", func() bool {
				return slices.ContainsFunc(a.Members(), func(m Member) bool { return m.ID == b.ID() })
			})
			// Past one renew deadline after the corruption: still alive.
			time.Sleep(cfg.RenewDeadline) // a span in which a must not self-fence, not a wait for a condition
			if isClosed(a.Done()) {
				t.Fatalf("session self-fenced on a corrupt layout: %v", a.Err())
			}
		})
	}
}

// A session record of the wrong type costs only its own shard: the claim
// succeeds without a session (the shard will IDENTIFY) and drops the record,
// so the next save works.
func TestClaimDropsWrongTypeSessionRecord(t *testing.T) {
	_, client := startRedis(t)
	ctx := testCtx(t)
	a := newSession(t, client, testConfig(""))
	endGrace(t, client, "")
	key := ShardKey{ID: 1, Count: 3}
	if err := client.Set(ctx, a.Keys().Session(key), "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	l := claimOK(t, a, key)
	if st, err := a.LoadState(ctx, key); err != nil || st.Resumable() {
		t.Fatalf("state after dropping a corrupt record: %+v, %v; want empty", st, err)
	}
	if typ := client.Type(ctx, a.Keys().Session(key)).Val(); typ != "none" {
		t.Fatalf("corrupt session record kept (type %s)", typ)
	}
	if err := l.SaveState(ctx, gateway.ShardState{SessionID: "s1", Sequence: 7}); err != nil {
		t.Fatalf("save after the drop: %v", err)
	}
}
