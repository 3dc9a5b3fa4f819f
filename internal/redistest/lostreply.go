package redistest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// LoadableScript is a Lua script LostReply can load and recognise by SHA1
// (*redis.Script, *keyspace.Script).
type LoadableScript interface {
	Load(ctx context.Context, c redis.Scripter) *redis.StringCmd
	Hash() string
}

// ReplyDropper is the part of a fault proxy (internal/faultproxy.Proxy) that
// LostReply uses: it loses the reply to the next matching request.
type ReplyDropper interface {
	DropRepliesTo(n int, match func(request []byte) bool)
	Dropped() int64
}

// LostReply runs op, whose client reaches s through proxy, with the reply to
// the next run of script lost, and fails t unless go-redis retried it: the
// proxy cut exactly one reply, op succeeded (so a second run answered), and
// s ran the script exactly twice (EVALSHA, counted by INFO commandstats). It
// returns how many times each command ran meanwhile, scripts' own calls
// included, so the test can check what the two runs wrote. Nothing else may
// run scripts on s meanwhile.
//
// The script is loaded first, so that the request is an EVALSHA that names
// it: an EVALSHA of an unknown script would be the one cut (its NOSCRIPT).
func (s *Server) LostReply(t testing.TB, proxy ReplyDropper, script LoadableScript, op func() error) map[string]int64 {
	t.Helper()
	return s.LostPipelineReply(t, proxy, script, 2, op)
}

// LostPipelineReply is LostReply for a script sent in a pipeline, and maybe
// after other scripts (all loaded already): go-redis retries the whole
// pipeline, and Redis runs evalshas EVALSHAs in all.
func (s *Server) LostPipelineReply(t testing.TB, proxy ReplyDropper, script LoadableScript, evalshas int, op func() error) map[string]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	if err := script.Load(ctx, c).Err(); err != nil {
		t.Fatalf("redistest: load script: %v", err)
	}
	sha := []byte(script.Hash())
	before, err := s.CommandCalls(ctx)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	dropped := proxy.Dropped()
	proxy.DropRepliesTo(1, func(req []byte) bool { return bytes.Contains(req, sha) })
	opErr := op()
	proxy.DropRepliesTo(0, nil)
	after, err := s.CommandCalls(ctx)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	ran := map[string]int64{}
	for name, n := range after {
		if d := n - before[name]; d != 0 {
			ran[name] = d
		}
	}
	if opErr != nil {
		t.Fatalf("call through a lost reply: %v (commands run: %v)", opErr, ran)
	}
	if d := proxy.Dropped() - dropped; d != 1 {
		t.Fatalf("the proxy cut %d replies, want 1: the retry was not exercised (commands run: %v)", d, ran)
	}
	if ran["evalsha"] != int64(evalshas) || ran["eval"] != 0 {
		t.Fatalf("Redis ran EVALSHA %d times and EVAL %d times, want %d EVALSHA (the lost run and the retry); ran %v",
			ran["evalsha"], ran["eval"], evalshas, ran)
	}
	return ran
}
