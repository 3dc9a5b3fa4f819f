// Package lease gives each shard (id, count) of a Discord bot exactly one owner
// among the workers of a fleet, coordinated through Redis.
//
// It is modelled on etcd's client/v3/concurrency: a [Session] is one worker's
// membership in the fleet. It owns one keep-alive goroutine that renews the
// member key, and its mirror in each of the fleet's partitions (see
// internal/keyspace), every RenewInterval in one pipeline (on Redis Cluster
// one round trip per master, all at once); every [Lease] the session holds is
// tied to the mirror in its shard's partition, so the same round trip renews
// all of them, whatever their number. A lease carries a fencing token that only grows
// (it is derived from Redis server time, so it keeps growing across a Redis
// restart), and every write that depends on ownership (renew, release, the
// session store, the worker's event sink) checks it in the same Lua script.
//
// Self-fencing: when no renew has succeeded within RenewDeadline of the moment
// the last successful renew was sent (measured on the local monotonic clock),
// the session closes every lease's Done channel and its own, before the TTL can
// let anyone else claim. A partition whose mirror alone could not be renewed
// (its Cluster master down) self-fences alone: its leases end, the others and
// the session live on, and it claims again once its renews succeed. [NewSession] enforces TTL > RenewDeadline > 1.2 x
// RenewInterval and TTL > RenewDeadline / (1 - MaxClockDrift).
//
// Clock independence: the TTL runs on the Redis server, the deadline on the
// worker's clock, and the session only measures durations on that clock, so
// its offset (wall time an hour wrong) does not matter. Its rate does: a clock
// slow by a fraction d stretches RenewDeadline to RenewDeadline/(1-d) of real
// time, hence the second rule. MaxClockDrift (default 0.1; 15 s / 10 s
// tolerates up to 1/3) is the rate error the timings must absorb, relative to
// the Redis server's expiry clock, which Redis takes from its wall clock: a
// step of the Redis host's clock is not covered, nor is a pause of the worker
// process (the fencing token is what stops a paused holder's writes).
//
// Retries: go-redis runs a command again when its connection fails before the
// reply arrives, although Redis may have run it. Every mutating script is
// therefore idempotent: a claim carries a request id (the replay answers the
// same lease and token, and issues none), the others compare tokens or write
// absolute values. The tests cut real replies with internal/faultproxy, so
// that go-redis itself replays each script (retry_idempotency_test.go).
//
// [Assign] says who should own each shard (rendezvous hashing with a load cap);
// the lease says who does. [Session.Run] reconciles the two: it claims the
// shards assigned to this worker that are free and revokes (through a
// [Handler]) the shards that should move, paced and never with two owners.
//
// The fleet layout (shard count, shards split after a 4011) lives in Redis too
// ([Session.SetLayoutIfAbsent], [Session.SplitShard]); leases follow it.
//
// Redis data loss (restart without persistence, FLUSHALL, a failover that lost
// the epoch key) is detected through the epoch keys, one fleet-wide and one per
// partition (a partition's master may lose its data alone); holders then
// re-assert their leases with their old tokens, and nobody claims a shard it
// did not hold in a partition that lost its data for DataLossGrace (>= TTL). Not detected: an asynchronous-replication failover
// whose new primary kept the epoch and member keys but lost recent lease
// writes (use min-replicas-to-write on HA deployments).
//
// An empty Redis looks exactly like one that lost its data to a session that
// never knew an epoch, but not to the holders: each live holder renews within
// RenewInterval, finds the epoch gone or changed, and re-asserts. So a session
// that creates the epoch only blocks claims for DataLossProbe (RenewInterval
// plus a margin for the round trip); the first re-assertion within it puts the
// full DataLossGrace in force, and when none comes the fleet is new and starts
// claiming at once (2.25 s after its first worker by default, not 25 s). What
// the probe gives up: a holder that cannot reach Redis for the whole probe
// (but has not self-fenced yet) may see its shard claimed by another member
// before it self-fences, within RenewDeadline of its last renew; its own
// writes are fenced meanwhile (its member key is gone until it re-asserts, and
// that re-assertion then loses the shard). A whole fleet restarted together
// with its Redis is indistinguishable from a new one.
//
// A worker that restarts with the same WorkerID gets ErrMemberExists until
// its previous member key expires (TTL); Run then deletes the leases its
// previous life left behind. A refused register takes back the member keys
// it wrote in the other partitions, so that they do not refuse the retry.
//
// Key schema (the fleet-wide keys under the prefix's {hash tag}, each
// partition's under its own, so every script touches one Redis Cluster slot):
// see [Keys] and docs/keyspace.md.
//
// What it is not for: it does not talk to Discord, start shards or publish
// events (internal/worker and pkg/sharding do), and it does not pace IDENTIFYs
// (pkg/redislimiter does). A TTL lease is a liveness hint: it bounds double
// ownership by self-fencing, it cannot exclude it under arbitrary pauses; the
// fencing token lets downstream writers reject stale owners.
package lease
