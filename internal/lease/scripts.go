package lease

import (
	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
)

// Lua scripts. Every key a script touches is in KEYS (one hash tag, so one
// Cluster slot); time is the server's TIME; every mutating script is
// idempotent, because go-redis may retry a script that did run: claims carry a
// request id, the rest compare tokens or set absolute values.
//
// Fencing tokens are max(server time in µs, last issued + 1, previous token of
// the lease + 1): they only grow, and keep growing after Redis lost its data
// (the clock does). They stay below 2^53, so Lua's doubles hold them exactly.

const luaNow = `
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
`

// register: KEYS member, members, since, epoch, grace;
// ARGV id, info, ttl_ms, new_epoch, probe_ms.
// Returns {status, epoch, created}; status "exists" when another live
// session uses the id. A missing epoch is created with only the short probe
// grace: the register cannot tell a new Redis from a lost one, but every live
// holder of a lost one re-asserts within the probe and extends the grace.
var registerScript = redis.NewScript(luaNow + `
local ttl = tonumber(ARGV[3])
local ep = redis.call('GET', KEYS[4])
local created = 0
if not ep then
  ep = ARGV[4]
  redis.call('SET', KEYS[4], ep)
  redis.call('SET', KEYS[5], '1', 'PX', ARGV[5])
  created = 1
end
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[2] then return {'exists', ep, created} end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now_ms - ttl)
for _, id in ipairs(dead) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
end
redis.call('ZADD', KEYS[2], now_ms + ttl, ARGV[1])
redis.call('ZADD', KEYS[3], 'NX', now_ms, ARGV[1])
return {'ok', ep, created}
`)

// renew: KEYS member, members, since, epoch, layout; ARGV id, ttl_ms, epoch.
// Returns {"ok", now_ms, layout_version, ids, since_ms} or {"epoch", epoch}
// or {"gone"}.
var renewScript = redis.NewScript(`
if redis.call('PEXPIRE', KEYS[1], ARGV[2]) == 0 then
  local ep = redis.call('GET', KEYS[4])
  if ep ~= ARGV[3] then return {'epoch', ep or ''} end
  return {'gone'}
end
` + luaNow + `
redis.call('ZADD', KEYS[2], now_ms + tonumber(ARGV[2]), ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now_ms, '+inf')
local since = {}
if #ids > 0 then since = redis.call('ZMSCORE', KEYS[3], unpack(ids)) end
-- The renew is liveness: a corrupt layout key must not fail it (that would
-- self-fence the whole fleet). -1 makes the reconciler reload the layout,
-- which reports what is wrong and keeps the last good one.
local lv = redis.pcall('HGET', KEYS[5], 'version')
if lv == false then lv = '0' elseif type(lv) ~= 'string' or not tonumber(lv) then lv = '-1' end
return {'ok', now_ms, lv, ids, since}
`)

// claim: KEYS member(me), epoch, grace, fence, n lease keys, n session keys,
// then member keys of other owners the caller knows of;
// ARGV me, epoch, request_id, n, prefix.
// Returns {"ok", per-lease results} or {"epoch"} or {"gone"}; a result is
// {"ok", token, session_id, seq, resume_url[, corrupt_record_error]}, {"held", owner},
// {"unknown", owner} (call again with member:owner in KEYS) or {"grace", pttl}.
var claimScript = redis.NewScript(luaNow + `
local me, n = ARGV[1], tonumber(ARGV[4])
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return {'epoch'} end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone'} end
local grace = redis.call('PTTL', KEYS[3])
local known = {}
for i = 5 + 2 * n, #KEYS do known[KEYS[i]] = true end
local fence0 = tonumber(redis.call('GET', KEYS[4]) or '0') or 0
local fence = fence0
local out = {'ok'}
for i = 1, n do
  local lk, sk = KEYS[4 + i], KEYS[4 + n + i]
  local cur = redis.call('HMGET', lk, 'owner', 'token', 'req')
  local owner = cur[1]
  local res
  if owner == me and cur[3] == ARGV[3] then
    res = {'ok', cur[2]}
  else
    if owner and owner ~= me then
      local mk = ARGV[5] .. 'member:' .. owner
      if not known[mk] then
        res = {'unknown', owner}
      elseif redis.call('EXISTS', mk) == 1 then
        res = {'held', owner}
      end
    end
    if not res and grace > 0 and owner ~= me then res = {'grace', tostring(grace)} end
    if not res then
      local tok = math.max(now_us, fence + 1, (tonumber(cur[2] or '0') or 0) + 1)
      fence = tok
      local ts = string.format('%.0f', tok)
      redis.call('HSET', lk, 'owner', me, 'token', ts, 'req', ARGV[3])
      res = {'ok', ts}
    end
  end
  if res[1] == 'ok' then
    -- A session record of the wrong type must cost only its own shard (one
    -- IDENTIFY), not the whole claim batch: the new owner drops it.
    local st = redis.pcall('HMGET', sk, 'session_id', 'seq', 'resume_url')
    if st.err then
      redis.call('DEL', sk)
      res[3], res[4], res[5], res[6] = '', '0', '', st.err
    else
      res[3], res[4], res[5] = st[1] or '', st[2] or '0', st[3] or ''
    end
  end
  out[#out + 1] = res
end
if fence ~= fence0 then redis.call('SET', KEYS[4], string.format('%.0f', fence)) end
return out
`)

// release: KEYS n lease keys; ARGV me, n tokens. Returns per lease 1
// (deleted), 0 (already gone) or -1 (someone else holds it: untouched).
var releaseScript = redis.NewScript(`
local out = {}
for i = 1, #KEYS do
  local cur = redis.call('HMGET', KEYS[i], 'owner', 'token')
  if not cur[1] then
    out[i] = 0
  elseif cur[1] == ARGV[1] and cur[2] == ARGV[i + 1] then
    redis.call('DEL', KEYS[i])
    out[i] = 1
  else
    out[i] = -1
  end
end
return out
`)

// luaValid is the fleet's one validity rule: valid = true iff the lease
// KEYS[1] is held by ARGV[1] with token ARGV[2] and the member key KEYS[2]
// exists.
const luaValid = keyspace.LuaLeaseValid

// valid: KEYS lease, member; ARGV me, token. Returns 1 or 0.
var validScript = redis.NewScript(luaValid + `
if valid then return 1 end
return 0
`)

// saveState: KEYS lease, member, session; ARGV me, token, session_id, seq,
// resume_url. Returns 1, or 0 when fenced (nothing written).
var saveStateScript = redis.NewScript(luaValid + `
if not valid then return 0 end
redis.call('HSET', KEYS[3], 'session_id', ARGV[3], 'seq', ARGV[4], 'resume_url', ARGV[5], 'token', ARGV[2])
return 1
`)

// clearState: KEYS lease, member, session; ARGV me, token. Returns 1, or 0
// when fenced.
var clearStateScript = redis.NewScript(luaValid + `
if not valid then return 0 end
redis.call('DEL', KEYS[3])
return 1
`)

// reassert: KEYS member, members, since, epoch, grace, fence, layout, then n
// lease keys; ARGV me, info, ttl_ms, new_epoch, grace_ms, layout_version,
// layout_data, probe_ms, then n tokens. Re-creates the member key and every
// lease that is absent with its old token; returns {epoch, per lease 1 (ours)
// or 0 (lost)}. A re-assertion proves the data loss, so it puts the full
// grace in force (unless more than a probe's worth of it is left already: the
// holders of one loss extend it once, not once each).
var reassertScript = redis.NewScript(luaNow + `
local me, ttl = ARGV[1], tonumber(ARGV[3])
local ep = redis.call('GET', KEYS[4])
if not ep then
  ep = ARGV[4]
  redis.call('SET', KEYS[4], ep)
end
if redis.call('PTTL', KEYS[5]) <= tonumber(ARGV[8]) then
  redis.call('SET', KEYS[5], '1', 'PX', ARGV[5])
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
redis.call('ZADD', KEYS[2], now_ms + ttl, me)
redis.call('ZADD', KEYS[3], 'NX', now_ms, me)
if ARGV[7] ~= '' and redis.call('EXISTS', KEYS[7]) == 0 then
  redis.call('HSET', KEYS[7], 'version', ARGV[6], 'data', ARGV[7])
end
local fence0 = tonumber(redis.call('GET', KEYS[6]) or '0') or 0
local fence = fence0
local out = {ep}
for i = 8, #KEYS do
  local tok = ARGV[i + 1]
  local cur = redis.call('HMGET', KEYS[i], 'owner', 'token')
  if not cur[1] then
    redis.call('HSET', KEYS[i], 'owner', me, 'token', tok, 'req', 'reassert')
    fence = math.max(fence, tonumber(tok))
    out[#out + 1] = 1
  elseif cur[1] == me and cur[2] == tok then
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
if fence ~= fence0 then redis.call('SET', KEYS[6], string.format('%.0f', fence)) end
return out
`)

// layoutInit: KEYS layout; ARGV data. Sets version 1 unless a layout exists;
// returns {version, data} of the stored layout.
var layoutInitScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'version', 'data')
if cur[1] then return {cur[1], cur[2] or ''} end
redis.call('HSET', KEYS[1], 'version', '1', 'data', ARGV[1])
return {'1', ARGV[1]}
`)

// layoutCAS: KEYS layout; ARGV expected_version, data. Returns 1 when stored
// as version expected+1, 0 on a version conflict.
var layoutCASScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'version') or '0'
if cur ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'version', tostring(tonumber(ARGV[1]) + 1), 'data', ARGV[2])
return 1
`)

// sweep: KEYS lease keys; ARGV me, then the tokens the caller holds. Deletes
// the leases owned by me under a token it does not hold (left by an earlier
// session with the same worker ID, which the new member key would otherwise
// revive); returns how many.
var sweepScript = redis.NewScript(`
local held = {}
for i = 2, #ARGV do held[ARGV[i]] = true end
local n = 0
for i = 1, #KEYS do
  local cur = redis.call('HMGET', KEYS[i], 'owner', 'token')
  if cur[1] == ARGV[1] and not held[cur[2]] then
    redis.call('DEL', KEYS[i])
    n = n + 1
  end
end
return n
`)
