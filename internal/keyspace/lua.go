package keyspace

// LuaLeaseValid is the fence: the one validity rule of every fenced script.
// With KEYS[1] the shard's Lease, KEYS[2] the holder's Member, ARGV[1] the
// holder's worker ID and ARGV[2] its fencing token, it leaves the Lua local
// `valid` true iff the lease is held by ARGV[1] with token ARGV[2] and the
// holder's membership has not expired.
const LuaLeaseValid = `
local cur = redis.call('HMGET', KEYS[1], 'owner', 'token')
local valid = cur[1] == ARGV[1] and cur[2] == ARGV[2] and redis.call('EXISTS', KEYS[2]) == 1
`
