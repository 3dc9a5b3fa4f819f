package keyspace

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Script is a Lua script whose KEYS and ARGV are named in one place. NewScript
// prepends a prelude that binds each name to its position
// (`local K_lease = KEYS[1]`, `local A_token = ARGV[2]`), so a script body
// uses names, never positions, and Run checks that the caller passed as many
// keys and at least as many arguments as the script names. Arguments after the
// named ones (a variadic tail, such as a batch of events) start at the Lua
// local ARGS_TAIL.
//
// The reply convention of every script of the fleet: success is a plain reply
// (an integer, a string or an array of values); a refusal is an error reply
// whose first word is an upper-case code (FENCED, STALESESSION, ...), as
// Redis's own WRONGTYPE or MOVED, followed by a human-readable detail. The Lua
// helper refuse(code, detail) builds one; ParseRefusal reads one back.
type Script struct {
	keys     []string
	args     []string
	keysTail bool // more keys than named may follow (WithKeysTail)
	script   *redis.Script
	source   string
}

// luaRefuse is the one way a script refuses (see Script).
const luaRefuse = `
local function refuse(code, detail)
  return redis.error_reply(code .. ' ' .. (detail or ''))
end
`

// NewScript builds a Script from its key names, argument names and body. Names
// must be Lua identifiers; a duplicate or empty name panics (a programming
// error, found by the package's tests at init).
func NewScript(keys, args []string, body string) *Script {
	var b strings.Builder
	seen := map[string]bool{}
	bind := func(kind, prefix string, names []string) {
		for i, n := range names {
			if n == "" || seen[prefix+n] || !isLuaIdent(n) {
				panic(fmt.Sprintf("keyspace: bad script %s name %q", kind, n))
			}
			seen[prefix+n] = true
			fmt.Fprintf(&b, "local %s%s = %s[%d]\n", prefix, n, kind, i+1)
		}
	}
	bind("KEYS", "K_", keys)
	bind("ARGV", "A_", args)
	fmt.Fprintf(&b, "local ARGS_TAIL = %d\n", len(args)+1)
	fmt.Fprintf(&b, "local KEYS_TAIL = %d\n", len(keys)+1)
	src := b.String() + luaRefuse + body
	return &Script{keys: keys, args: args, script: redis.NewScript(src), source: src}
}

func isLuaIdent(s string) bool {
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// WithKeysTail lets callers pass keys after the named ones (a batch of
// leases), from the Lua local KEYS_TAIL on; all of them in the named keys'
// slot.
func (s *Script) WithKeysTail() *Script {
	s.keysTail = true
	return s
}

// Source is the script as Redis runs it (prelude included).
func (s *Script) Source() string { return s.source }

// Hash is the script's SHA1, as EVALSHA takes it.
func (s *Script) Hash() string { return s.script.Hash() }

// Keys and Args are the names, in position order.
func (s *Script) Keys() []string { return s.keys }
func (s *Script) Args() []string { return s.args }

// ErrScriptArgs: a caller passed a script the wrong number of keys or too few
// arguments.
var ErrScriptArgs = errors.New("keyspace: script called with the wrong keys or arguments")

func (s *Script) check(keys []string, args []any) error {
	if len(keys) < len(s.keys) || len(keys) > len(s.keys) && !s.keysTail || len(args) < len(s.args) {
		return fmt.Errorf("%w: want %d keys (%v) and at least %d args (%v), got %d and %d",
			ErrScriptArgs, len(s.keys), s.keys, len(s.args), s.args, len(keys), len(args))
	}
	return nil
}

// Run runs the script by EVALSHA, loading it on NOSCRIPT (redis.Script.Run).
func (s *Script) Run(ctx context.Context, c redis.Scripter, keys []string, args ...any) *redis.Cmd {
	if err := s.check(keys, args); err != nil {
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(err)
		return cmd
	}
	return s.script.Run(ctx, c, keys, args...)
}

// EvalSha runs the script by EVALSHA only (for pipelines, after Load).
func (s *Script) EvalSha(ctx context.Context, c redis.Scripter, keys []string, args ...any) *redis.Cmd {
	if err := s.check(keys, args); err != nil {
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(err)
		return cmd
	}
	return s.script.EvalSha(ctx, c, keys, args...)
}

// Eval runs the script by EVAL.
func (s *Script) Eval(ctx context.Context, c redis.Scripter, keys []string, args ...any) *redis.Cmd {
	if err := s.check(keys, args); err != nil {
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(err)
		return cmd
	}
	return s.script.Eval(ctx, c, keys, args...)
}

// Load loads the script into the server's script cache.
func (s *Script) Load(ctx context.Context, c redis.Scripter) *redis.StringCmd {
	return s.script.Load(ctx, c)
}

// Call is one script call of RunPipelined.
type Call struct {
	Script *Script
	Keys   []string
	Args   []any
}

// RunPipelined runs calls in one pipeline: one round trip to a single Redis,
// and on Redis Cluster one per master, sent to all masters at once. Each Cmd
// holds its own reply: one call failing (its node down) leaves the others'
// replies intact.
//
// One pipeline per node, not one for the cluster: when ctx ends while
// go-redis's cluster pipeline backs off to retry a silent node's commands, it
// sets ctx's error on every command, answered or not, and a dead master must
// cost only its own calls.
func RunPipelined(ctx context.Context, c redis.UniversalClient, calls []Call) []*redis.Cmd {
	cmds := make([]*redis.Cmd, len(calls))
	var wg sync.WaitGroup
	for _, group := range byNode(ctx, c, calls) {
		wg.Go(func() { runOnNode(ctx, c, calls, group, cmds) })
	}
	wg.Wait()
	return cmds
}

// runOnNode sends the calls of group (one node's) by EVALSHA in one
// pipeline; those the node lacked the script of (NOSCRIPT) go again by EVAL,
// which caches it there. It sets cmds[i] for each i of group.
func runOnNode(ctx context.Context, c redis.UniversalClient, calls []Call, group []int, cmds []*redis.Cmd) {
	pipe := c.Pipeline()
	for _, i := range group {
		cmds[i] = calls[i].Script.EvalSha(ctx, pipe, calls[i].Keys, calls[i].Args...)
	}
	_, _ = pipe.Exec(ctx) // each Cmd carries its own error
	pipe = c.Pipeline()
	for _, i := range group {
		if redis.HasErrorPrefix(cmds[i].Err(), "NOSCRIPT") {
			cmds[i] = calls[i].Script.Eval(ctx, pipe, calls[i].Keys, calls[i].Args...)
		}
	}
	if pipe.Len() > 0 {
		_, _ = pipe.Exec(ctx)
	}
}

// byNode groups calls' indexes by the master of their first key, as the
// cluster client's slot map has it (one group on any other client, or when
// the map cannot say).
func byNode(ctx context.Context, c redis.UniversalClient, calls []Call) [][]int {
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		all := make([]int, len(calls))
		for i := range all {
			all[i] = i
		}
		return [][]int{all}
	}
	index := map[string]int{}
	var groups [][]int
	for i, call := range calls {
		node := ""
		if len(call.Keys) > 0 {
			if m, err := cc.MasterForKey(ctx, call.Keys[0]); err == nil {
				node = m.Options().Addr
			}
		}
		g, seen := index[node]
		if !seen {
			g = len(groups)
			index[node] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	return groups
}

// Refusal is a script's refusal (see Script): Code is the first word of the
// error reply, Detail the rest.
type Refusal struct {
	Code   string
	Detail string
}

func (r *Refusal) Error() string {
	if r.Detail == "" {
		return r.Code
	}
	return r.Code + " " + r.Detail
}

// ParseRefusal reads a script's refusal from err: ok is false when err is nil
// or is not a Redis error reply starting with an upper-case code word (a
// network error, a timeout, a Lua runtime error such as "ERR user_script...").
func ParseRefusal(err error) (Refusal, bool) {
	var re redis.Error
	if err == nil || !errors.As(err, &re) {
		return Refusal{}, false
	}
	msg := re.Error()
	code, detail, _ := strings.Cut(msg, " ")
	if code == "" || redisOwnCodes[code] || !isCode(code) {
		return Refusal{}, false
	}
	return Refusal{Code: code, Detail: detail}, true
}

// redisOwnCodes are the error codes Redis itself replies with: never a
// script's refusal, so no script may refuse with one of them.
var redisOwnCodes = map[string]bool{
	"ERR": true, "WRONGTYPE": true, "MOVED": true, "ASK": true, "TRYAGAIN": true,
	"CLUSTERDOWN": true, "CROSSSLOT": true, "READONLY": true, "LOADING": true,
	"BUSY": true, "NOSCRIPT": true, "NOAUTH": true, "NOPERM": true, "WRONGPASS": true,
	"MASTERDOWN": true, "EXECABORT": true, "OOM": true, "NOREPLICAS": true,
	"MISCONF": true, "UNBLOCKED": true, "NOGROUP": true, "BUSYGROUP": true,
	"BUSYKEY": true, "NOTBUSY": true, "NOPROTO": true, "UNKILLABLE": true,
}

func isCode(s string) bool {
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r == '_') {
			return false
		}
	}
	return true
}

// IsRefusal reports whether err is a script refusal with the given code.
func IsRefusal(err error, code string) bool {
	r, ok := ParseRefusal(err)
	return ok && r.Code == code
}
