package eventsink

import (
	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/cache"
	"github.com/shardfleet/shardfleet/internal/keyspace"
)

// commitScript commits one batch of one shard's session. It is idempotent:
// events at or below the record's seq are skipped, so a go-redis retry of a
// batch that did commit writes nothing.
//
// It also detects a rollback: the writer says how far it knows the record of
// this session reached (ARGV 9, 0: no knowledge). A record behind that means
// Redis lost writes it had acknowledged (asynchronous replication: a replica
// promoted without the old master's last writes); a record that no longer
// holds the session at all means Redis lost the record (data loss, or a
// session younger than the replica's lag). Nothing is written then: the
// writer RESUMEs from what is durable, so that Discord replays the rest, or
// after a lost record starts the record afresh.
//
// KEYS: 1 lease, 2 member, 3 session record, 4 stream.
// ARGV: 1 worker ID, 2 fencing token, 3 shard, 4 count, 5 session ID,
// 6 resume URL, 7 MAXLEN (0: uncapped), 8 n, 9 expected record seq, 10 the
// shard's cache guild prefix, 11 its cache guild set, then n events, each
// seq, type, data, c, then its c cache cells (internal/cache: applied only
// when the event is committed, see cache.go).
// Returns {committed, last committed seq, cache errors}; refusals are error replies
// starting FENCED, STALESESSION, ROLLBACK ("ROLLBACK shard N durable seq S")
// or LOSTRECORD.
var commitScript = redis.NewScript(keyspace.LuaLeaseValid + cache.Lua + `
if not valid then
  return redis.error_reply('FENCED shard ' .. ARGV[3] .. ' lease not held with this token')
end
local rec = redis.call('HMGET', KEYS[3], 'session_id', 'seq')
local n = tonumber(ARGV[8])
local expect = tonumber(ARGV[9])
local last = 0
if rec[1] == ARGV[5] then
  last = tonumber(rec[2]) or 0
  if last < expect then
    return redis.error_reply('ROLLBACK shard ' .. ARGV[3] .. ' durable seq ' .. last)
  end
elseif expect > 0 then
  return redis.error_reply('LOSTRECORD shard ' .. ARGV[3] .. ' record no longer holds the session')
elseif n > 0 and (ARGV[13] == 'READY' or not rec[1] or rec[1] == '') then
  redis.call('DEL', KEYS[3])
  redis.call('HSET', KEYS[3], 'session_id', ARGV[5], 'resume_url', ARGV[6], 'seq', 0)
else
  return redis.error_reply('STALESESSION shard ' .. ARGV[3] .. ' record holds another session')
end
local maxlen = tonumber(ARGV[7])
local committed, cache_errors = 0, 0
local shard = ARGV[3] .. '/' .. ARGV[4]
local at = 12
for i = 1, n do
  local seq, cells = tonumber(ARGV[at]), tonumber(ARGV[at + 3])
  if seq > last then
    local old, cache_err = cache_apply(at + 4, cells, ARGV[10], ARGV[11], shard)
    if cache_err then cache_errors = cache_errors + 1 end
    local entry = {'shard', ARGV[3], 'count', ARGV[4], 'seq', ARGV[at], 'session', ARGV[5],
      'type', ARGV[at + 1], 'data', ARGV[at + 2], 'fence', ARGV[2]}
    if old then
      entry[#entry + 1] = 'old'
      entry[#entry + 1] = old
    end
    if maxlen > 0 then
      redis.call('XADD', KEYS[4], 'MAXLEN', '~', maxlen, '*', unpack(entry))
    else
      redis.call('XADD', KEYS[4], '*', unpack(entry))
    end
    last = seq
    committed = committed + 1
  end
  at = at + 4 + cells
end
redis.call('HSET', KEYS[3], 'seq', last, 'token', ARGV[2])
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[3], 'resume_url', ARGV[6])
end
return {committed, last, cache_errors}
`)
