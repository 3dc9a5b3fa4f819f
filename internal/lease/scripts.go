package lease

import (
	"github.com/shardfleet/shardfleet/internal/keyspace"
)

// Lua scripts, on keyspace.NewScript (named KEYS and ARGV, refuse() for
// refusals, plain success replies). Every script touches one slot: either the
// fleet-wide keys (membership, epoch, layout) or the keys of one partition
// (its leases, session records, member mirrors, fencing counter, epoch and
// grace). Time is the server's TIME; every mutating script is idempotent,
// because go-redis may retry a script that did run: claims carry a request
// id, the rest compare tokens or set absolute values.
//
// Fencing tokens are max(server time in µs, last issued in the partition + 1,
// previous token of the lease + 1): they only grow, and keep growing after a
// partition's master lost its data (the clock does). They stay below 2^53, so
// Lua's doubles hold them exactly.
//
// Refusal codes: EXISTS (another live session uses the worker ID), EPOCH (the
// epoch changed: data loss; detail the epoch seen), GONE (the member key or
// mirror expired), FENCED (a fenced write by a stale holder).

const luaNow = `
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
`

// luaEpochOrCreate leaves `ep` the stored epoch, creating it as A_new_epoch
// when absent (`created` then 1).
const luaEpochOrCreate = `
local ep = redis.call('GET', K_epoch)
local created = 0
if not ep then
  ep = A_new_epoch
  redis.call('SET', K_epoch, ep)
  created = 1
end
`

// registerScript joins the fleet-wide membership. Returns {epoch, created};
// refuses EXISTS when another live session uses the id.
var registerScript = keyspace.NewScript(
	[]string{"member", "members", "since", "epoch"},
	[]string{"worker", "info", "ttl_ms", "new_epoch"},
	luaNow+luaEpochOrCreate+`
local ttl = tonumber(A_ttl_ms)
local cur = redis.call('GET', K_member)
if cur and cur ~= A_info then return refuse('EXISTS', A_worker) end
redis.call('SET', K_member, A_info, 'PX', ttl)
local dead = redis.call('ZRANGEBYSCORE', K_members, '-inf', now_ms - ttl)
for _, id in ipairs(dead) do
  redis.call('ZREM', K_members, id)
  redis.call('ZREM', K_since, id)
end
redis.call('ZADD', K_members, now_ms + ttl, A_worker)
redis.call('ZADD', K_since, 'NX', now_ms, A_worker)
return {ep, created}
`)

// partRegisterScript writes the worker's member mirror in one partition.
// Returns {epoch, created}; refuses EXISTS. A missing partition epoch is
// created with only the short probe grace: the register cannot tell a new
// partition from a lost one, but every live holder of a lost one re-asserts
// within the probe and extends the grace.
var partRegisterScript = keyspace.NewScript(
	[]string{"member", "epoch", "grace"},
	[]string{"worker", "info", "ttl_ms", "new_epoch", "probe_ms"},
	luaEpochOrCreate+`
if created == 1 then redis.call('SET', K_grace, '1', 'PX', A_probe_ms) end
local cur = redis.call('GET', K_member)
if cur and cur ~= A_info then return refuse('EXISTS', A_worker) end
redis.call('SET', K_member, A_info, 'PX', A_ttl_ms)
return {ep, created}
`)

// unregisterScript takes back what one call of a failed register wrote: the
// member key (a partition's mirror, or the fleet-wide key) if it still holds
// that register's info, then the worker's entries in the sets of the keys
// tail (the fleet-wide members and since). Returns 1 (taken back) or 0 (the
// key holds another session's info, or none: untouched).
var unregisterScript = keyspace.NewScript([]string{"member"}, []string{"worker", "info"}, `
if redis.call('GET', K_member) ~= A_info then return 0 end
redis.call('DEL', K_member)
for i = KEYS_TAIL, #KEYS do redis.call('ZREM', KEYS[i], A_worker) end
return 1
`).WithKeysTail()

// renewScript renews the fleet-wide membership. Returns {now_ms,
// layout_version, ids, since_ms}; refuses EPOCH or GONE.
var renewScript = keyspace.NewScript(
	[]string{"member", "members", "since", "epoch", "layout"},
	[]string{"worker", "ttl_ms", "epoch"},
	`
if redis.call('PEXPIRE', K_member, A_ttl_ms) == 0 then
  local ep = redis.call('GET', K_epoch)
  if ep ~= A_epoch then return refuse('EPOCH', ep or '') end
  return refuse('GONE', A_worker)
end
`+luaNow+`
redis.call('ZADD', K_members, now_ms + tonumber(A_ttl_ms), A_worker)
local ids = redis.call('ZRANGEBYSCORE', K_members, '(' .. now_ms, '+inf')
local since = {}
if #ids > 0 then since = redis.call('ZMSCORE', K_since, unpack(ids)) end
-- The renew is liveness: a corrupt layout key must not fail it (that would
-- self-fence the whole fleet). -1 makes the reconciler reload the layout,
-- which reports what is wrong and keeps the last good one.
local lv = redis.pcall('HGET', K_layout, 'version')
if lv == false then lv = '0' elseif type(lv) ~= 'string' or not tonumber(lv) then lv = '-1' end
return {now_ms, lv, ids, since}
`)

// partRenewScript renews the worker's member mirror in one partition.
// Returns 1; refuses EPOCH (the partition lost its data) or GONE.
var partRenewScript = keyspace.NewScript(
	[]string{"member", "epoch"},
	[]string{"worker", "ttl_ms", "epoch"},
	`
if redis.call('PEXPIRE', K_member, A_ttl_ms) == 1 then return 1 end
local ep = redis.call('GET', K_epoch)
if ep ~= A_epoch then return refuse('EPOCH', ep or '') end
return refuse('GONE', A_worker)
`)

// claimScript claims leases of one partition. KEYS: the claimer's mirror, the
// partition's epoch, grace and fence, then (tail) n lease keys, n session
// keys, then the mirrors of other owners the caller knows of. A_prefix is the
// partition's prefix (the mirror of an owner is A_prefix .. 'member:' ..
// owner). Refuses EPOCH or GONE; else returns per lease {"ok", token,
// session_id, seq, resume_url[, corrupt_record_error]}, {"held", owner},
// {"unknown", owner} (call again with its mirror in KEYS) or {"grace", pttl}.
var claimScript = keyspace.NewScript(
	[]string{"member", "epoch", "grace", "fence"},
	[]string{"worker", "epoch", "req", "n", "prefix"},
	luaNow+`
local me, n = A_worker, tonumber(A_n)
if redis.call('GET', K_epoch) ~= A_epoch then return refuse('EPOCH', '') end
if redis.call('EXISTS', K_member) == 0 then return refuse('GONE', me) end
local grace = redis.call('PTTL', K_grace)
local known = {}
for i = KEYS_TAIL + 2 * n, #KEYS do known[KEYS[i]] = true end
local fence0 = tonumber(redis.call('GET', K_fence) or '0') or 0
local fence = fence0
local out = {}
for i = 0, n - 1 do
  local lk, sk = KEYS[KEYS_TAIL + i], KEYS[KEYS_TAIL + n + i]
  local cur = redis.call('HMGET', lk, 'owner', 'token', 'req')
  local owner = cur[1]
  local res
  if owner == me and cur[3] == A_req then
    res = {'ok', cur[2]}
  else
    if owner and owner ~= me then
      local mk = A_prefix .. 'member:' .. owner
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
      redis.call('HSET', lk, 'owner', me, 'token', ts, 'req', A_req)
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
if fence ~= fence0 then redis.call('SET', K_fence, string.format('%.0f', fence)) end
return out
`).WithKeysTail()

// releaseScript: KEYS (tail) lease keys of one partition; the args' tail is
// one token per lease. Returns per lease 1 (deleted), 0 (already gone) or -1
// (someone else holds it: untouched).
var releaseScript = keyspace.NewScript(nil, []string{"worker"}, `
local out = {}
for i = 1, #KEYS do
  local cur = redis.call('HMGET', KEYS[i], 'owner', 'token')
  if not cur[1] then
    out[i] = 0
  elseif cur[1] == A_worker and cur[2] == ARGV[ARGS_TAIL + i - 1] then
    redis.call('DEL', KEYS[i])
    out[i] = 1
  else
    out[i] = -1
  end
end
return out
`).WithKeysTail()

// luaValid is the fleet's one validity rule (keyspace.LuaLeaseValid).
const luaValid = keyspace.LuaLeaseValid

// fenced is every fenced script's first step.
const luaFenced = luaValid + `
if not valid then return refuse('FENCED', 'lease not held with this token') end
`

// validScript returns 1; refuses FENCED.
var validScript = keyspace.NewScript([]string{"lease", "member"}, []string{"worker", "token"}, luaFenced+`
return 1
`)

// saveStateScript stores the session record; returns 1, refuses FENCED
// (nothing written).
var saveStateScript = keyspace.NewScript(
	[]string{"lease", "member", "session"},
	[]string{"worker", "token", "session_id", "seq", "resume_url"},
	luaFenced+`
redis.call('HSET', K_session, 'session_id', A_session_id, 'seq', A_seq, 'resume_url', A_resume_url, 'token', A_token)
return 1
`)

// clearStateScript deletes the session record; returns 1, refuses FENCED.
var clearStateScript = keyspace.NewScript(
	[]string{"lease", "member", "session"}, []string{"worker", "token"}, luaFenced+`
redis.call('DEL', K_session)
return 1
`)

// reassertScript re-creates the fleet-wide membership after the fleet-wide
// keys were lost, and the last layout the worker saw. Returns the epoch.
var reassertScript = keyspace.NewScript(
	[]string{"member", "members", "since", "epoch", "layout"},
	[]string{"worker", "info", "ttl_ms", "new_epoch", "layout_version", "layout_data"},
	luaNow+luaEpochOrCreate+`
local ttl = tonumber(A_ttl_ms)
redis.call('SET', K_member, A_info, 'PX', ttl)
redis.call('ZADD', K_members, now_ms + ttl, A_worker)
redis.call('ZADD', K_since, 'NX', now_ms, A_worker)
if A_layout_data ~= '' and redis.call('EXISTS', K_layout) == 0 then
  redis.call('HSET', K_layout, 'version', A_layout_version, 'data', A_layout_data)
end
return ep
`)

// partReassertScript re-creates, after a partition lost its data, the
// worker's mirror there and every lease (tail of KEYS; tokens in the args'
// tail) that is absent, with its old token; returns {epoch, per lease 1
// (ours) or 0 (lost)}. A re-assertion proves the data loss, so it puts the
// full grace in force (unless more than a probe's worth of it is left
// already: the holders of one loss extend it once, not once each).
var partReassertScript = keyspace.NewScript(
	[]string{"member", "epoch", "grace", "fence"},
	[]string{"worker", "info", "ttl_ms", "new_epoch", "grace_ms", "probe_ms"},
	luaEpochOrCreate+`
if redis.call('PTTL', K_grace) <= tonumber(A_probe_ms) then
  redis.call('SET', K_grace, '1', 'PX', A_grace_ms)
end
redis.call('SET', K_member, A_info, 'PX', A_ttl_ms)
local fence0 = tonumber(redis.call('GET', K_fence) or '0') or 0
local fence = fence0
local out = {ep}
for i = KEYS_TAIL, #KEYS do
  local tok = ARGV[ARGS_TAIL + i - KEYS_TAIL]
  local cur = redis.call('HMGET', KEYS[i], 'owner', 'token')
  if not cur[1] then
    redis.call('HSET', KEYS[i], 'owner', A_worker, 'token', tok, 'req', 'reassert')
    fence = math.max(fence, tonumber(tok))
    out[#out + 1] = 1
  elseif cur[1] == A_worker and cur[2] == tok then
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
if fence ~= fence0 then redis.call('SET', K_fence, string.format('%.0f', fence)) end
return out
`).WithKeysTail()

// layoutInitScript sets version 1 unless a layout exists; returns {version,
// data} of the stored layout.
var layoutInitScript = keyspace.NewScript([]string{"layout"}, []string{"data"}, `
local cur = redis.call('HMGET', K_layout, 'version', 'data')
if cur[1] then return {cur[1], cur[2] or ''} end
redis.call('HSET', K_layout, 'version', '1', 'data', A_data)
return {'1', A_data}
`)

// layoutCASScript returns 1 when stored as version expected+1, 0 on a
// version conflict.
var layoutCASScript = keyspace.NewScript([]string{"layout"}, []string{"expected", "data"}, `
local cur = redis.call('HGET', K_layout, 'version') or '0'
if cur ~= A_expected then return 0 end
redis.call('HSET', K_layout, 'version', tostring(tonumber(A_expected) + 1), 'data', A_data)
return 1
`)

// sweepScript: KEYS (tail) lease keys of one partition; the args' tail is
// the tokens the caller holds. Deletes the leases owned by the worker under a
// token it does not hold (left by an earlier session with the same worker
// ID, which the new member key would otherwise revive); returns how many.
var sweepScript = keyspace.NewScript(nil, []string{"worker"}, `
local held = {}
for i = ARGS_TAIL, #ARGV do held[ARGV[i]] = true end
local n = 0
for i = 1, #KEYS do
  local cur = redis.call('HMGET', KEYS[i], 'owner', 'token')
  if cur[1] == A_worker and not held[cur[2]] then
    redis.call('DEL', KEYS[i])
    n = n + 1
  end
end
return n
`).WithKeysTail()

// partitionsScript stores the fleet's partition count the first time and
// returns the stored one. A_want "0" follows the stored count (A_default for
// a new fleet). A fleet whose Redis holds the single-tag layout of before
// partitions (its fence or stream exists, no count stored) is a one-partition
// fleet: that layout is P = 1's. Refuses SINGLETAG when asked for more.
var partitionsScript = keyspace.NewScript(
	[]string{"partitions", "fence", "events"},
	[]string{"want", "default"},
	`
local cur = redis.call('GET', K_partitions)
if cur then return cur end
local want = A_want
if redis.call('EXISTS', K_fence, K_events) > 0 then
  if want ~= '0' and want ~= '1' then
    return refuse('SINGLETAG', 'the fleet holds the single-tag layout of before partitions')
  end
  want = '1'
elseif want == '0' then
  want = A_default
end
redis.call('SET', K_partitions, want)
return want
`)
