package redislimiter

import (
	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
)

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
	numKeys
)

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

// prelude is shared by every script. ARGV: 1 ticket, 2 bucket, 3 channel,
// 4 grant log "1"/"0", 5 holder id, 6 epoch known to the caller ("" if none),
// 7 epoch id to create if missing, 8 quiet period ms after a proven data loss,
// 9 quiet period ms when the epoch is simply missing (window + margin, or 0
// with Config.TrustNewEpoch).
//
// Time comes from TIME (server clock, µs). Numbers are kept as strings formatted
// with %.0f: µs since 1970 fit a double exactly, tostring would print 1.7e+15.
const prelude = `
local hold, q, qd, seqk, budget, logk, epochk, quietk =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local ticket, bucket, chan, logon, holder, known, fresh, quietms, newms =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1', ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local nowms = math.floor(now / 1000)
local function fmt(n) return string.format('%.0f', n) end

local function logev(ev, seq)
  if logon then
    redis.call('XADD', logk, 'MAXLEN', '~', 1000000, '*', 'ev', ev, 'b', bucket, 't', fmt(now), 'tk', ticket,
      'h', holder, 's', seq or '0')
  end
end

-- Data-loss detection: a caller that knew an epoch and finds none (or another)
-- proves Redis lost its state; nothing is granted until born + quietms, so that
-- permits handed out before the loss have been used and cooled down. A missing
-- epoch that nobody knew may be a new Redis or a lost one whose whole fleet
-- restarted too (Discord still remembers the last IDENTIFYs): one window +
-- margin of quiet covers the latter.
local epoch = redis.call('HGET', epochk, 'id')
if not epoch then
  epoch = fresh
  redis.call('HSET', epochk, 'id', epoch, 'born', fmt(nowms))
  if known ~= '' then
    redis.call('SET', quietk, '1', 'PX', quietms)
    logev('dataloss')
  elseif newms > 0 then
    redis.call('SET', quietk, '1', 'PX', newms)
  end
elseif known ~= '' and known ~= epoch then
  -- Someone recreated the epoch after a loss this caller saw: make sure the
  -- full quiet period (from the epoch's birth) is in force, not a shorter one.
  local untilms = tonumber(redis.call('HGET', epochk, 'born')) + quietms
  if untilms > nowms and untilms - nowms > redis.call('PTTL', quietk) then
    redis.call('SET', quietk, '1', 'PXAT', fmt(untilms))
  end
end

-- Waiters whose deadline passed (crashed processes) leave the queue.
local function purge()
  local dead = redis.call('ZRANGEBYSCORE', qd, '-inf', '(' .. fmt(nowms), 'LIMIT', 0, 100)
  for _, d in ipairs(dead) do
    redis.call('ZREM', q, d)
    redis.call('ZREM', qd, d)
  end
  return #dead
end

-- µs until the bucket may be granted: 0 when free.
local function busy()
  local d = 0
  local quiet = redis.call('PTTL', quietk)
  if quiet > 0 then d = quiet * 1000 end
  local h = redis.call('HMGET', hold, 't', 'u', 'e')
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
        local p = redis.call('PTTL', hold)
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
  local head = redis.call('ZRANGE', q, 0, 0)[1]
  if head then
    redis.call('PUBLISH', chan, bucket .. ':' .. fmt(busy()) .. ':' .. head)
  end
end
`

// acquireScript enqueues the caller's ticket (once), refreshes its deadline,
// and grants the bucket when the ticket is the head and the bucket is free.
// ARGV 10 HoldTTL ms, 11 TicketTTL ms, 12 budget reserve.
// Reply: {status, value, seq, epoch}; status 1 granted (value = grant µs),
// 0 wait (value = µs until the bucket frees, -1 when not head), -1 budget
// exhausted (value = remaining, seq = the budget key's PTTL in ms: until the
// budget resets, -1 without an expiry). Idempotent: a replay after a grant
// returns the same grant without changing anything; a refusal changes nothing
// but the caller's own ticket.
var acquireScript = redis.NewScript(prelude + `
local holdttl, ticketttl, reserve = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local h = redis.call('HMGET', hold, 't', 'g', 's')
if h[1] == ticket then return {1, h[2], h[3], epoch} end

local rem = redis.call('HGET', budget, 'remaining')
if rem and tonumber(rem) <= reserve then
  redis.call('ZREM', q, ticket)
  redis.call('ZREM', qd, ticket)
  return {-1, rem, redis.call('PTTL', budget), epoch}
end

local purged = purge()
local seq
if purged == 0 and redis.call('EXISTS', q) == 0 and busy() == 0 then
  -- Fast path: nobody waits and the bucket is free; no need to queue.
  seq = fmt(redis.call('INCR', seqk))
else
  seq = redis.call('ZSCORE', q, ticket)
  if not seq then
    seq = redis.call('INCR', seqk)
    redis.call('ZADD', q, seq, ticket)
  end
  seq = fmt(tonumber(seq))
  redis.call('ZADD', qd, nowms + ticketttl, ticket)

  if redis.call('ZRANGE', q, 0, 0)[1] ~= ticket then
    if purged > 0 then notify() end
    return {0, '-1', seq, epoch}
  end
  local d = busy()
  if d > 0 then return {0, fmt(d), seq, epoch} end
  redis.call('ZREM', q, ticket)
  redis.call('ZREM', qd, ticket)
end

if rem then redis.call('HINCRBY', budget, 'remaining', -1) end
-- Every field is overwritten (a cooled-down hold may not have expired yet).
local e = now + holdttl * 1000
redis.call('HSET', hold, 't', ticket, 'g', fmt(now), 's', seq, 'u', '0', 'e', fmt(e))
redis.call('PEXPIREAT', hold, fmt(math.ceil(e / 1000)))
logev('grant', seq)
return {1, fmt(now), seq, epoch}
`)

// unlockScript starts the cooldown of a permit held by the caller's ticket.
// ARGV 10 cooldown µs (window + margin).
// Reply: {1, cooldown end µs, epoch}, or {0, '0', epoch} when the ticket does not
// hold the bucket (a no-op). Idempotent: a replay returns the same end.
var unlockScript = redis.NewScript(prelude + `
local cooldown = tonumber(ARGV[10])
local h = redis.call('HMGET', hold, 't', 'u', 's')
if h[1] ~= ticket then return {0, '0', epoch} end
local u = tonumber(h[2]) or 0
if u > 0 then return {1, h[2], epoch} end
u = now + cooldown
redis.call('HSET', hold, 'u', fmt(u))
redis.call('PEXPIREAT', hold, fmt(math.ceil(u / 1000)))
logev('unlock', h[3])
notify()
return {1, fmt(u), epoch}
`)

// leaveScript removes the caller's ticket from the queue and, if the ticket was
// granted but the caller never got the permit (cancelled during the grant),
// revokes it: no IDENTIFY was sent, so the bucket is free at once and the
// budget is given back. Reply: {removed 0/1, revoked 0/1, epoch}. Idempotent.
var leaveScript = redis.NewScript(prelude + `
local r = redis.call('ZRANK', q, ticket)
local removed, revoked = 0, 0
if r then
  redis.call('ZREM', q, ticket)
  redis.call('ZREM', qd, ticket)
  removed = 1
end
local h = redis.call('HMGET', hold, 't', 'u', 's')
if h[1] == ticket and (tonumber(h[2]) or 0) == 0 then
  redis.call('DEL', hold)
  if redis.call('EXISTS', budget) == 1 then redis.call('HINCRBY', budget, 'remaining', 1) end
  logev('revoke', h[3])
  revoked = 1
end
if r == 0 or revoked == 1 then notify() end
return {removed, revoked, epoch}
`)
