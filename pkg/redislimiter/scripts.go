package redislimiter

import "github.com/shardfleet/shardfleet/internal/keyspace"

// Redis layout: every key under the one {hash tag} of the prefix P, named by
// internal/keyspace (docs/keyspace.md says what each holds). A hold is
// PEXPIREAT its e (grant + HoldTTL, rounded up to the ms) while held, and its
// cooldown end once unlocked; the channel P idf:ev carries
// "<bucket>:<delay µs>:<head ticket>".
const (
	keyHold = iota
	keyQueue
	keyDeadlines
	keySeq
	keyBudget
	keyLog
	keyEpoch
	keyQuiet
)

// keyNames names scriptKeys' positions: the Lua locals K_hold, K_queue, ...
var keyNames = []string{
	keyHold:      "hold",
	keyQueue:     "queue",
	keyDeadlines: "deadlines",
	keySeq:       "seq",
	keyBudget:    "budget",
	keyLog:       "log",
	keyEpoch:     "epoch",
	keyQuiet:     "quiet",
}

// scriptKeys returns the KEYS of every limiter script for bucket b.
func scriptKeys(prefix string, b int) []string {
	k := keyspace.NewKeys(prefix)
	return []string{
		keyHold:      k.IdentifyHold(b),
		keyQueue:     k.IdentifyQueue(b),
		keyDeadlines: k.IdentifyDeadlines(b),
		keySeq:       k.IdentifySeq(),
		keyBudget:    k.IdentifyBudget(),
		keyLog:       k.IdentifyLog(),
		keyEpoch:     k.IdentifyEpoch(),
		keyQuiet:     k.IdentifyQuiet(),
	}
}

func channelName(prefix string) string    { return keyspace.NewKeys(prefix).IdentifyChannel() }
func budgetKey(prefix string) string      { return keyspace.NewKeys(prefix).IdentifyBudget() }
func logKey(prefix string) string         { return keyspace.NewKeys(prefix).IdentifyLog() }
func maxConcKey(prefix string) string     { return keyspace.NewKeys(prefix).IdentifyMaxConcurrency() }
func holdKey(prefix string, b int) string { return keyspace.NewKeys(prefix).IdentifyHold(b) }

// commonArgNames are the arguments every script starts with (Limiter.commonArgs
// passes them in this order): the caller's ticket, the bucket, the
// notification channel, grant log "1"/"0", the holder id, the epoch known to
// the caller ("" if none), the epoch id to create if missing, the quiet period
// in ms after a proven data loss, and the quiet period in ms when the epoch is
// simply missing (window + margin, or 0 with Config.TrustNewEpoch).
var commonArgNames = []string{
	"ticket", "bucket", "channel", "grant_log", "holder",
	"known_epoch", "fresh_epoch", "loss_quiet_ms", "new_quiet_ms",
}

// newScript is a limiter script: the keys of scriptKeys, commonArgNames then
// args, and the prelude before body.
func newScript(args []string, body string) *keyspace.Script {
	return keyspace.NewScript(keyNames, append(append([]string(nil), commonArgNames...), args...), prelude+body)
}

// prelude is shared by every script.
//
// Time comes from TIME (server clock, µs). Numbers are kept as strings formatted
// with %.0f: µs since 1970 fit a double exactly, tostring would print 1.7e+15.
const prelude = `
local logon, quietms, newms = A_grant_log == '1', tonumber(A_loss_quiet_ms), tonumber(A_new_quiet_ms)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local nowms = math.floor(now / 1000)
local function fmt(n) return string.format('%.0f', n) end

local function logev(ev, seq)
  if logon then
    redis.call('XADD', K_log, 'MAXLEN', '~', 1000000, '*', 'ev', ev, 'b', A_bucket, 't', fmt(now), 'tk', A_ticket,
      'h', A_holder, 's', seq or '0')
  end
end

-- Data-loss detection: a caller that knew an epoch and finds none (or another)
-- proves Redis lost its state; nothing is granted until born + quietms, so that
-- permits handed out before the loss have been used and cooled down. A missing
-- epoch that nobody knew may be a new Redis or a lost one whose whole fleet
-- restarted too (Discord still remembers the last IDENTIFYs): one window +
-- margin of quiet covers the latter.
local epoch = redis.call('HGET', K_epoch, 'id')
if not epoch then
  epoch = A_fresh_epoch
  redis.call('HSET', K_epoch, 'id', epoch, 'born', fmt(nowms))
  if A_known_epoch ~= '' then
    redis.call('SET', K_quiet, '1', 'PX', quietms)
    logev('dataloss')
  elseif newms > 0 then
    redis.call('SET', K_quiet, '1', 'PX', newms)
  end
elseif A_known_epoch ~= '' and A_known_epoch ~= epoch then
  -- Someone recreated the epoch after a loss this caller saw: make sure the
  -- full quiet period (from the epoch's birth) is in force, not a shorter one.
  local untilms = tonumber(redis.call('HGET', K_epoch, 'born')) + quietms
  if untilms > nowms and untilms - nowms > redis.call('PTTL', K_quiet) then
    redis.call('SET', K_quiet, '1', 'PXAT', fmt(untilms))
  end
end

-- Waiters whose deadline passed (crashed processes) leave the queue.
local function purge()
  local dead = redis.call('ZRANGEBYSCORE', K_deadlines, '-inf', '(' .. fmt(nowms), 'LIMIT', 0, 100)
  for _, d in ipairs(dead) do
    redis.call('ZREM', K_queue, d)
    redis.call('ZREM', K_deadlines, d)
  end
  return #dead
end

-- µs until the bucket may be granted: 0 when free.
local function busy()
  local d = 0
  local quiet = redis.call('PTTL', K_quiet)
  if quiet > 0 then d = quiet * 1000 end
  local h = redis.call('HMGET', K_hold, 't', 'u', 'e')
  if h[1] then
    local u = tonumber(h[2]) or 0
    if u == 0 then
      -- Held: busy until the grant's HoldTTL has passed, to the µs. The
      -- key's own expiry is in whole ms and PTTL reads 0 during its last
      -- ms, which granted the bucket up to 1 ms early.
      local e = tonumber(h[3])
      if e then
        if e > now then d = math.max(d, e - now) end
      else
        local p = redis.call('PTTL', K_hold)
        if p > 0 then d = math.max(d, p * 1000) end
      end
    elseif u > now then
      d = math.max(d, u - now)
    end
  end
  return d
end

-- Tell the head of the queue (a live one) when it may try.
local function notify()
  purge()
  local head = redis.call('ZRANGE', K_queue, 0, 0)[1]
  if head then
    redis.call('PUBLISH', A_channel, A_bucket .. ':' .. fmt(busy()) .. ':' .. head)
  end
end
`

// Refusal codes of the limiter's scripts (keyspace.Script's convention); the
// detail is "name=value" fields, read by refusalFields.
const (
	// refuseWait: the bucket is not free for this ticket yet. Detail:
	// wait_us (µs until the bucket frees, -1 when the ticket is not the
	// head of the queue), seq, epoch.
	refuseWait = "WAIT"
	// refuseBudget: the budget is at or below the reserve. Detail:
	// remaining, reset_ms (the budget key's PTTL: until the budget resets,
	// -1 without an expiry), epoch.
	refuseBudget = "BUDGET"
	// refuseNotHeld: unlock by a ticket that does not hold the bucket (a
	// no-op). Detail: epoch.
	refuseNotHeld = "NOTHELD"
)

// acquireScript enqueues the caller's ticket (once), refreshes its deadline,
// and grants the bucket when the ticket is the head and the bucket is free.
// Reply: {grant µs, seq, epoch}, or refuseWait or refuseBudget. Idempotent: a
// replay after a grant returns the same grant without changing anything; a
// refusal changes nothing but the caller's own ticket.
var acquireScript = newScript([]string{"hold_ttl_ms", "ticket_ttl_ms", "reserve"}, `
local holdttl, ticketttl, reserve = tonumber(A_hold_ttl_ms), tonumber(A_ticket_ttl_ms), tonumber(A_reserve)
local h = redis.call('HMGET', K_hold, 't', 'g', 's')
if h[1] == A_ticket then return {h[2], h[3], epoch} end

local rem = redis.call('HGET', K_budget, 'remaining')
if rem and tonumber(rem) <= reserve then
  redis.call('ZREM', K_queue, A_ticket)
  redis.call('ZREM', K_deadlines, A_ticket)
  return refuse('`+refuseBudget+`', 'remaining=' .. rem .. ' reset_ms=' .. redis.call('PTTL', K_budget) .. ' epoch=' .. epoch)
end

local function wait(d, seq)
  return refuse('`+refuseWait+`', 'wait_us=' .. d .. ' seq=' .. seq .. ' epoch=' .. epoch)
end

local purged = purge()
local seq
if purged == 0 and redis.call('EXISTS', K_queue) == 0 and busy() == 0 then
  -- Fast path: nobody waits and the bucket is free; no need to queue.
  seq = fmt(redis.call('INCR', K_seq))
else
  seq = redis.call('ZSCORE', K_queue, A_ticket)
  if not seq then
    seq = redis.call('INCR', K_seq)
    redis.call('ZADD', K_queue, seq, A_ticket)
  end
  seq = fmt(tonumber(seq))
  redis.call('ZADD', K_deadlines, nowms + ticketttl, A_ticket)

  if redis.call('ZRANGE', K_queue, 0, 0)[1] ~= A_ticket then
    if purged > 0 then notify() end
    return wait('-1', seq)
  end
  local d = busy()
  if d > 0 then return wait(fmt(d), seq) end
  redis.call('ZREM', K_queue, A_ticket)
  redis.call('ZREM', K_deadlines, A_ticket)
end

if rem then redis.call('HINCRBY', K_budget, 'remaining', -1) end
-- Every field is overwritten (a cooled-down hold may not have expired yet).
local e = now + holdttl * 1000
redis.call('HSET', K_hold, 't', A_ticket, 'g', fmt(now), 's', seq, 'u', '0', 'e', fmt(e))
redis.call('PEXPIREAT', K_hold, fmt(math.ceil(e / 1000)))
logev('grant', seq)
return {fmt(now), seq, epoch}
`)

// unlockScript starts the cooldown of a permit held by the caller's ticket.
// Reply: {cooldown end µs, epoch}, or refuseNotHeld when the ticket does not
// hold the bucket (a no-op). Idempotent: a replay returns the same end.
var unlockScript = newScript([]string{"cooldown_us"}, `
local h = redis.call('HMGET', K_hold, 't', 'u', 's')
if h[1] ~= A_ticket then return refuse('`+refuseNotHeld+`', 'epoch=' .. epoch) end
local u = tonumber(h[2]) or 0
if u > 0 then return {h[2], epoch} end
u = now + tonumber(A_cooldown_us)
redis.call('HSET', K_hold, 'u', fmt(u))
redis.call('PEXPIREAT', K_hold, fmt(math.ceil(u / 1000)))
logev('unlock', h[3])
notify()
return {fmt(u), epoch}
`)

// leaveScript removes the caller's ticket from the queue and, if the ticket was
// granted but the caller never got the permit (cancelled during the grant),
// revokes it: no IDENTIFY was sent, so the bucket is free at once and the
// budget is given back. Reply: {removed 0/1, revoked 0/1, epoch}. Idempotent.
var leaveScript = newScript(nil, `
local r = redis.call('ZRANK', K_queue, A_ticket)
local removed, revoked = 0, 0
if r then
  redis.call('ZREM', K_queue, A_ticket)
  redis.call('ZREM', K_deadlines, A_ticket)
  removed = 1
end
local h = redis.call('HMGET', K_hold, 't', 'u', 's')
if h[1] == A_ticket and (tonumber(h[2]) or 0) == 0 then
  redis.call('DEL', K_hold)
  if redis.call('EXISTS', K_budget) == 1 then redis.call('HINCRBY', K_budget, 'remaining', 1) end
  logev('revoke', h[3])
  revoked = 1
end
if r == 0 or revoked == 1 then notify() end
return {removed, revoked, epoch}
`)
