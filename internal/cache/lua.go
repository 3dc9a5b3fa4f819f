package cache

import (
	"strings"

	"github.com/shardfleet/shardfleet/internal/keyspace"
)

// Lua defines, for a script that commits events, the Lua function
//
//	cache_old, cache_err = cache_apply(at, n, prefix, set, shard)
//
// which applies the n cells ARGV[at..at+n-1] of one event (Changes' output)
// to the cache: prefix is keyspace's CacheGuildPrefix of the event's shard,
// set its CacheShardGuilds, shard "<id>/<count>". It returns the cached
// object the change replaced or removed when the cells ask for it (OLD,
// OLDMSG; nil otherwise), and an error text when the cells could not be
// applied (a corrupt cached value, a key of the wrong type): the script must
// still commit the event, since the stream comes first, and the cache then
// keeps what the operations before the error did.
//
// The JSON the cache merges into is its own (compact: Changes compacts what
// it stores), so a top-level scanner suffices: no cjson, which would turn
// [] into {} and round big numbers.
var Lua = strings.NewReplacer(
	"$GUILD_SUFFIXES", luaSuffixes(),
	"$MSGS", luaQuote(keyspace.CacheSuffixMessages),
	"$CHANNELS", luaQuote(keyspace.CacheSuffixChannels),
	"$F_GUILD", luaQuote(FieldGuild),
	"$F_UNAVAIL", luaQuote(FieldUnavailable),
	"$F_SHARD", luaQuote(FieldShard),
).Replace(luaBody)

// luaSuffixes is every kind's suffix but messages' (found per channel).
func luaSuffixes() string {
	all := []string{keyspace.CacheSuffixGuild, keyspace.CacheSuffixChannels, keyspace.CacheSuffixRoles,
		keyspace.CacheSuffixEmojis, keyspace.CacheSuffixStickers, keyspace.CacheSuffixMembers,
		keyspace.CacheSuffixVoice, keyspace.CacheSuffixPresences}
	q := make([]string, len(all))
	for i, s := range all {
		q[i] = luaQuote(s)
	}
	return "{" + strings.Join(q, ", ") + "}"
}

func luaQuote(s string) string { return "'" + s + "'" }

const luaBody = `
local CACHE_SUFFIXES = $GUILD_SUFFIXES

-- the index of the quote that closes the JSON string opened at i
local function cache_strend(s, i)
  local j = i + 1
  while true do
    local k = string.find(s, '["\\]', j)
    if not k then error('cache: unterminated JSON string') end
    if string.byte(s, k) == 92 then j = k + 2 else return k end
  end
end

-- the index after the compact JSON value that starts at i
local function cache_valend(s, i)
  local c = string.byte(s, i)
  if c == 34 then return cache_strend(s, i) + 1 end
  if c == 123 or c == 91 then
    local depth, j = 0, i
    while true do
      local k = string.find(s, '[%[%]{}"]', j)
      if not k then error('cache: unterminated JSON value') end
      local b = string.byte(s, k)
      if b == 34 then
        j = cache_strend(s, k) + 1
      else
        if b == 123 or b == 91 then depth = depth + 1 else depth = depth - 1 end
        j = k + 1
        if depth == 0 then return j end
      end
    end
  end
  local k = string.find(s, '[,}%]]', i)
  if not k then error('cache: bad JSON value') end
  return k
end

-- the top-level fields of a compact JSON object: quoted keys in order, and
-- raw values by quoted key; none for anything else (nil, false)
local function cache_fields(s)
  local keys, vals = {}, {}
  if type(s) ~= 'string' or string.byte(s, 1) ~= 123 then return keys, vals end
  local i = 2
  while string.byte(s, i) == 34 do
    local ke = cache_strend(s, i)
    local k = string.sub(s, i, ke)
    local ve = cache_valend(s, ke + 2)
    if vals[k] == nil then keys[#keys + 1] = k end
    vals[k] = string.sub(s, ke + 2, ve - 1)
    i = ve
    if string.byte(s, i) == 44 then i = i + 1 end
  end
  return keys, vals
end

-- old with the merge pairs ARGV[from..to] set over its top-level fields
local function cache_merge(old, from, to)
  local keys, vals = cache_fields(old)
  for j = from, to, 2 do
    if vals[ARGV[j]] == nil then keys[#keys + 1] = ARGV[j] end
    vals[ARGV[j]] = ARGV[j + 1]
  end
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = k .. ':' .. vals[k] end
  return '{' .. table.concat(parts, ',') .. '}'
end

-- the position and value of the cached message id in list key
local function cache_find_msg(key, id)
  local want = '"' .. id .. '"'
  local msgs = redis.call('LRANGE', key, 0, -1)
  for i, m in ipairs(msgs) do
    local _, vals = cache_fields(m)
    if vals['"id"'] == want then return i - 1, m end
  end
  return nil, nil
end

-- HSET of the pairs ARGV[from..to], in slices (unpack has a stack limit)
local function cache_hset(key, from, to)
  for s = from, to, 1000 do
    redis.call('HSET', key, unpack(ARGV, s, math.min(s + 999, to)))
  end
end

local function cache_drop(prefix, set, guild)
  local gp = prefix .. guild
  for _, ch in ipairs(redis.call('HKEYS', gp .. $CHANNELS)) do
    redis.call('DEL', gp .. $MSGS .. ch)
  end
  for _, suffix in ipairs(CACHE_SUFFIXES) do
    redis.call('DEL', gp .. suffix)
  end
  redis.call('SREM', set, guild)
end

local function cache_run(at, n, prefix, set, shard)
  local guild = ARGV[at]
  local gp = prefix .. guild
  local old = nil
  local i, stop = at + 1, at + n
  while i < stop do
    local op, argc = ARGV[i], tonumber(ARGV[i + 1])
    local a, z = i + 2, i + 1 + argc
    if op == 'REQ' then
      if redis.call('SISMEMBER', set, guild) == 0 then return old end
    elseif op == 'GUILD' then
      redis.call('HSET', gp, $F_GUILD, ARGV[a], $F_UNAVAIL, '0', $F_SHARD, shard)
      redis.call('SADD', set, guild)
    elseif op == 'UNAVAIL' then
      redis.call('HSET', gp, $F_UNAVAIL, '1')
    elseif op == 'DROP' then
      cache_drop(prefix, set, guild)
    elseif op == 'RECON' then
      local keep = {}
      for j = a, z do keep[ARGV[j]] = true end
      for _, g in ipairs(redis.call('SMEMBERS', set)) do
        if not keep[g] then cache_drop(prefix, set, g) end
      end
    elseif op == 'OLD' then
      old = old or redis.call('HGET', gp .. ARGV[a], ARGV[a + 1]) or nil
    elseif op == 'PUT' then
      cache_hset(gp .. ARGV[a], a + 1, z)
    elseif op == 'REPLACE' then
      redis.call('DEL', gp .. ARGV[a])
      cache_hset(gp .. ARGV[a], a + 1, z)
    elseif op == 'DEL' then
      redis.call('HDEL', gp .. ARGV[a], unpack(ARGV, a + 1, z))
    elseif op == 'CLEAR' then
      redis.call('DEL', gp .. ARGV[a])
    elseif op == 'MERGE' then
      local key = gp .. ARGV[a]
      redis.call('HSET', key, ARGV[a + 1], cache_merge(redis.call('HGET', key, ARGV[a + 1]), a + 2, z))
    elseif op == 'OLDMSG' then
      local _, m = cache_find_msg(gp .. $MSGS .. ARGV[a], ARGV[a + 1])
      old = old or m
    elseif op == 'MSG' then
      if redis.call('HEXISTS', gp .. $CHANNELS, ARGV[a]) == 1 then
        local key = gp .. $MSGS .. ARGV[a]
        redis.call('LPUSH', key, ARGV[a + 1])
        redis.call('LTRIM', key, 0, tonumber(ARGV[a + 2]) - 1)
      end
    elseif op == 'MSGPRUNE' then
      local keep = {}
      for j = a, z do keep[ARGV[j]] = true end
      for _, ch in ipairs(redis.call('HKEYS', gp .. $CHANNELS)) do
        if not keep[ch] then redis.call('DEL', gp .. $MSGS .. ch) end
      end
    elseif op == 'MSGMERGE' then
      local key = gp .. $MSGS .. ARGV[a]
      local at_, m = cache_find_msg(key, ARGV[a + 1])
      if at_ then redis.call('LSET', key, at_, cache_merge(m, a + 2, z)) end
    elseif op == 'MSGDEL' then
      local key = gp .. $MSGS .. ARGV[a]
      for j = a + 1, z do
        local _, m = cache_find_msg(key, ARGV[j])
        if m then redis.call('LREM', key, 1, m) end
      end
    else
      error('cache: unknown operation ' .. tostring(op))
    end
    i = z + 1
  end
  return old
end

local function cache_apply(at, n, prefix, set, shard)
  if n == 0 then return nil, nil end
  local ok, res = pcall(cache_run, at, n, prefix, set, shard)
  if ok then return res, nil end
  if type(res) == 'table' then res = res.err end
  return nil, tostring(res)
end
`
