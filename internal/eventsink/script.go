package eventsink

import (
	"github.com/shardfleet/shardfleet/internal/cache"
	"github.com/shardfleet/shardfleet/internal/keyspace"
)

// commitScript commits one batch of one shard's session. It is idempotent:
// events at or below the record's seq are skipped, so a go-redis retry of a
// batch that did commit writes nothing.
//
// It also detects a rollback: the writer says how far it knows the record of
// this session reached (A_expect, 0: no knowledge). A record behind that means
// Redis lost writes it had acknowledged (asynchronous replication: a replica
// promoted without the old master's last writes); a record that no longer
// holds the session at all means Redis lost the record (data loss, or a
// session younger than the replica's lag). Nothing is written then: the
// writer RESUMEs from what is durable, so that Discord replays the rest, or
// after a lost record starts the record afresh.
//
// The stream is the shard's partition's (keyspace.Keys.ShardEvents) and the
// member key its liveness mirror there: every key is in one slot, the cache's
// keys (under A_cache_prefix, the shard's cache guild prefix) included.
// The tail (from ARGS_TAIL) is n events, each seq, type, data, c, then its c
// cache cells (internal/cache: applied only when the event is committed, see
// cache.go).
// Returns {committed, last committed seq, cache errors}; refuses FENCED,
// STALESESSION, ROLLBACK ("ROLLBACK shard N durable seq S") or LOSTRECORD.
var commitScript = keyspace.NewScript(
	[]string{"lease", "member", "session", "stream"},
	[]string{"worker", "token", "shard", "count", "session", "resume_url", "maxlen", "n", "expect",
		"cache_prefix", "cache_guilds"},
	keyspace.LuaLeaseValid+cache.Lua+`
if not valid then
  return refuse('FENCED', 'shard ' .. A_shard .. ' lease not held with this token')
end
local rec = redis.call('HMGET', K_session, 'session_id', 'seq')
local n = tonumber(A_n)
local expect = tonumber(A_expect)
local last = 0
if rec[1] == A_session then
  last = tonumber(rec[2]) or 0
  if last < expect then
    return refuse('ROLLBACK', 'shard ' .. A_shard .. ' durable seq ' .. last)
  end
elseif expect > 0 then
  return refuse('LOSTRECORD', 'shard ' .. A_shard .. ' record no longer holds the session')
elseif n > 0 and (ARGV[ARGS_TAIL + 1] == 'READY' or not rec[1] or rec[1] == '') then
  redis.call('DEL', K_session)
  redis.call('HSET', K_session, 'session_id', A_session, 'resume_url', A_resume_url, 'seq', 0)
else
  return refuse('STALESESSION', 'shard ' .. A_shard .. ' record holds another session')
end
local maxlen = tonumber(A_maxlen)
local committed, cache_errors = 0, 0
local shard = A_shard .. '/' .. A_count
local at = ARGS_TAIL
for i = 1, n do
  local seq, cells = tonumber(ARGV[at]), tonumber(ARGV[at + 3])
  if seq > last then
    local old, cache_err = cache_apply(at + 4, cells, A_cache_prefix, A_cache_guilds, shard)
    if cache_err then cache_errors = cache_errors + 1 end
    local entry = {'shard', A_shard, 'count', A_count, 'seq', ARGV[at], 'session', A_session,
      'type', ARGV[at + 1], 'data', ARGV[at + 2], 'fence', A_token}
    if old then
      entry[#entry + 1] = 'old'
      entry[#entry + 1] = old
    end
    if maxlen > 0 then
      redis.call('XADD', K_stream, 'MAXLEN', '~', maxlen, '*', unpack(entry))
    else
      redis.call('XADD', K_stream, '*', unpack(entry))
    end
    last = seq
    committed = committed + 1
  end
  at = at + 4 + cells
end
redis.call('HSET', K_session, 'seq', last, 'token', A_token)
if A_resume_url ~= '' then
  redis.call('HSET', K_session, 'resume_url', A_resume_url)
end
return {committed, last, cache_errors}
`)
