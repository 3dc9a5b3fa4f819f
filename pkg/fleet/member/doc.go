// Package member runs a shardfleet fleet member inside your own Go program:
// what cmd/worker does in fleet mode (which is built on it). The member
// joins the fleet through Redis, wins shard leases, paces IDENTIFYs through
// the fleet-wide limiter, hands its shards off on a stop so that another
// member RESUMEs them, commits every dispatch exactly once, fenced, to the
// fleet's event stream (one per partition: a new fleet on Redis Cluster has
// 16, spread over the masters; see Config.Partitions), and sends the gateway
// commands queued for its shards (package fleet, docs/commands.md). An optional Handler sees, in-process,
// exactly the events committed to the stream.
//
// It is a package of its own, not part of package fleet: the member is built
// on fleet's wire format (the workers validate and record commands with
// package fleet), so fleet cannot import it back; and a bot that only
// consumes events and sends commands imports package fleet without linking
// the gateway, lease and limiter machinery.
package member
