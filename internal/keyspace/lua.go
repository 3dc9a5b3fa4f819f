package keyspace

// LuaLeaseValid is the fence: the one validity rule of every fenced script
// (a keyspace.Script naming the keys lease and member and the arguments
// worker and token). With K_lease the shard's Lease, K_member the holder's
// ShardMember (its liveness mirror in the shard's partition, so the rule reads
// one slot), A_worker the holder's worker ID and A_token its fencing token, it
// leaves the Lua local `valid` true iff the lease is held by A_worker with
// A_token and the holder's membership has not expired.
const LuaLeaseValid = `
local cur = redis.call('HMGET', K_lease, 'owner', 'token')
local valid = cur[1] == A_worker and cur[2] == A_token and redis.call('EXISTS', K_member) == 1
`
