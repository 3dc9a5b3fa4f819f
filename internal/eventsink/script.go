package eventsink

import (
	"github.com/redis/go-redis/v9"

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
// 6 resume URL, 7 MAXLEN (0: uncapped), 8 n, 9 expected record seq, then n
// triples (seq, type, data).
// Returns {committed, last committed seq}; refusals are error replies
// starting FENCED, STALESESSION, ROLLBACK ("ROLLBACK shard N durable seq S")
// or LOSTRECORD.
var commitScript = redis.NewScript(keyspace.LuaLeaseValid + `
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
elseif n > 0 and (ARGV[11] == 'READY' or not rec[1] or rec[1] == '') then
  redis.call('DEL', KEYS[3])
  redis.call('HSET', KEYS[3], 'session_id', ARGV[5], 'resume_url', ARGV[6], 'seq', 0)
else
  return redis.error_reply('STALESESSION shard ' .. ARGV[3] .. ' record holds another session')
end
local maxlen = tonumber(ARGV[7])
local committed = 0
for i = 0, n - 1 do
  local at = 10 + i * 3
  local seq = tonumber(ARGV[at])
  if seq > last then
    if maxlen > 0 then
      redis.call('XADD', KEYS[4], 'MAXLEN', '~', maxlen, '*', 'shard', ARGV[3], 'count', ARGV[4],
        'seq', ARGV[at], 'session', ARGV[5], 'type', ARGV[at + 1], 'data', ARGV[at + 2], 'fence', ARGV[2])
    else
      redis.call('XADD', KEYS[4], '*', 'shard', ARGV[3], 'count', ARGV[4],
        'seq', ARGV[at], 'session', ARGV[5], 'type', ARGV[at + 1], 'data', ARGV[at + 2], 'fence', ARGV[2])
    end
    last = seq
    committed = committed + 1
  end
end
redis.call('HSET', KEYS[3], 'seq', last, 'token', ARGV[2])
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[3], 'resume_url', ARGV[6])
end
return {committed, last}
`)
