package keyspace

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/redistest"
)

func TestScriptPreludeNamesPositions(t *testing.T) {
	s := NewScript([]string{"lease", "member"}, []string{"worker", "token"}, "return 1")
	for _, want := range []string{
		"local K_lease = KEYS[1]\n", "local K_member = KEYS[2]\n",
		"local A_worker = ARGV[1]\n", "local A_token = ARGV[2]\n", "local ARGS_TAIL = 3\n",
	} {
		if !strings.Contains(s.Source(), want) {
			t.Errorf("source lacks %q:\n%s", want, s.Source())
		}
	}
}

func TestScriptRejectsBadNames(t *testing.T) {
	for _, names := range [][]string{{""}, {"a", "a"}, {"1x"}, {"a-b"}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewScript(%q) did not panic", names)
				}
			}()
			NewScript(names, nil, "return 1")
		}()
	}
}

func TestScriptRunChecksArity(t *testing.T) {
	s := NewScript([]string{"a"}, []string{"x", "y"}, "return 1")
	err := s.Run(context.Background(), nil, []string{"k1", "k2"}, 1, 2).Err()
	if !errors.Is(err, ErrScriptArgs) {
		t.Fatalf("two keys for one: err = %v, want ErrScriptArgs", err)
	}
	err = s.Run(context.Background(), nil, []string{"k1"}, 1).Err()
	if !errors.Is(err, ErrScriptArgs) {
		t.Fatalf("one arg for two: err = %v, want ErrScriptArgs", err)
	}
}

func TestScriptRunsWithNamesAndRefuses(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	ctx := context.Background()
	s := NewScript([]string{"k"}, []string{"v", "limit"}, `
if tonumber(A_v) > tonumber(A_limit) then
  return refuse('TOOBIG', A_v .. ' over ' .. A_limit)
end
redis.call('SET', K_k, A_v)
local tail = {}
for i = ARGS_TAIL, #ARGV do tail[#tail + 1] = ARGV[i] end
return tail
`)
	got, err := s.Run(ctx, c, []string{"{t}:k"}, 3, 5, "a", "b").StringSlice()
	if err != nil || fmt.Sprint(got) != "[a b]" {
		t.Fatalf("run = %v, %v; want [a b]", got, err)
	}
	if v, _ := c.Get(ctx, "{t}:k").Result(); v != "3" {
		t.Fatalf("K_k = %q, want 3", v)
	}
	err = s.Run(ctx, c, []string{"{t}:k"}, 9, 5).Err()
	r, ok := ParseRefusal(err)
	if !ok || r.Code != "TOOBIG" || r.Detail != "9 over 5" || !IsRefusal(err, "TOOBIG") {
		t.Fatalf("refusal = %+v, %v (err %v); want TOOBIG 9 over 5", r, ok, err)
	}
}

func TestParseRefusalIgnoresRedisOwnErrors(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	ctx := context.Background()
	c.Set(ctx, "s", "x", 0)
	for name, err := range map[string]error{
		"nil":       nil,
		"plain":     errors.New("FENCED but not a redis reply"),
		"wrongtype": c.LPush(ctx, "s", 1).Err(),
		"lua error": c.Eval(ctx, "return redis.call('NOPE')", nil).Err(),
		"redis.Nil": redis.Nil,
	} {
		if r, ok := ParseRefusal(err); ok {
			t.Errorf("%s: ParseRefusal(%v) = %+v, want no refusal", name, err, r)
		}
	}
}

// TestRunPipelinedLoadsMissingScripts: a pipeline of calls whose script the
// server lacks still answers each call (loaded, then run again), and a
// refusal stays its own call's.
func TestRunPipelinedLoadsMissingScripts(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	ctx := context.Background()
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	s := NewScript([]string{"k"}, []string{"v"}, `
if A_v == 'no' then return refuse('NOPE', K_k) end
redis.call('SET', K_k, A_v)
return A_v
`)
	cmds := RunPipelined(ctx, c, []Call{
		{Script: s, Keys: []string{"{t}:a"}, Args: []any{"1"}},
		{Script: s, Keys: []string{"{t}:b"}, Args: []any{"no"}},
		{Script: s, Keys: []string{"{t}:c"}, Args: []any{"3"}},
	})
	if v, err := cmds[0].Text(); err != nil || v != "1" {
		t.Fatalf("call 0: %q, %v", v, err)
	}
	if !IsRefusal(cmds[1].Err(), "NOPE") {
		t.Fatalf("call 1: %v, want the NOPE refusal", cmds[1].Err())
	}
	if v, err := cmds[2].Text(); err != nil || v != "3" {
		t.Fatalf("call 2: %q, %v", v, err)
	}
}
