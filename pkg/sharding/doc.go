// Package sharding runs a set of Discord gateway shards in one process: the
// ShardManager of disgo v0.18's sharding package (same names, signatures and
// defaults), without its known bugs, plus what a fleet of workers needs.
//
// It is for:
//   - opening the configured shards (all shards of the count when none are
//     named, the count asked from GET /gateway/bot when it is 0), paced only by
//     an identify RateLimiter, buckets started in order;
//   - routing a guild to its shard (ShardIDByGuild, ShardByGuildID), across
//     shards of mixed counts after a split;
//   - re-sharding one shard on close 4011 when AutoScaling is on;
//   - opening a shard from a saved gateway.ShardState (RESUME, no IDENTIFY) and
//     handing a shard off with its state (FleetShardManager);
//   - the in-process identify RateLimiter (one permit per bucket, FIFO, window
//     plus margin after every unlock) and a noop one.
//
// It is not for: the gateway protocol itself (pkg/gateway), leases, fleet-wide
// assignment or session storage (internal/lease), or a limiter shared between
// processes (pkg/redislimiter implements RateLimiter over Redis).
package sharding
