package eventsink

import "github.com/redis/go-redis/v9"

// commitScript commits one batch of one shard's session. It is idempotent:
// events at or below the record's seq are skipped, so a go-redis retry of a
// batch that did commit writes nothing.
//
// KEYS: 1 lease, 2 member, 3 session record, 4 stream.
// ARGV: 1 worker ID, 2 fencing token, 3 shard, 4 count, 5 session ID,
// 6 resume URL, 7 MAXLEN (0: uncapped), 8 n, then n triples (seq, type, data).
// Returns {committed, last committed seq}.
var commitScript = redis.NewScript(`
local lease = redis.call('HMGET', KEYS[1], 'owner', 'token')
if lease[1] ~= ARGV[1] or lease[2] ~= ARGV[2] or redis.call('EXISTS', KEYS[2]) == 0 then
  return redis.error_reply('FENCED shard ' .. ARGV[3] .. ' lease not held with this token')
end
local rec = redis.call('HMGET', KEYS[3], 'session_id', 'seq')
local n = tonumber(ARGV[8])
local last = 0
if rec[1] == ARGV[5] then
  last = tonumber(rec[2]) or 0
elseif n > 0 and (ARGV[10] == 'READY' or not rec[1] or rec[1] == '') then
  redis.call('DEL', KEYS[3])
  redis.call('HSET', KEYS[3], 'session_id', ARGV[5], 'resume_url', ARGV[6], 'seq', 0)
else
  return redis.error_reply('STALESESSION shard ' .. ARGV[3] .. ' record holds another session')
end
local maxlen = tonumber(ARGV[7])
local committed = 0
for i = 0, n - 1 do
  local at = 9 + i * 3
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
