// Package worker runs one worker process's shards: in local mode every shard
// of the bot through pkg/sharding with its in-process identify limiter; in
// fleet mode the shards whose leases this worker holds (internal/lease),
// identifying through the fleet-wide pkg/redislimiter and committing every
// dispatch exactly once through internal/eventsink.
//
// Fleet lifecycle of one shard:
//
//   - lease won (lease.Handler.Acquired): open a Writer fenced by the lease's
//     token, then open the shard from the saved session record (RESUME, no
//     IDENTIFY) or, without one, IDENTIFY through the Redis limiter;
//   - lease revoked (rebalance, layout change, SIGTERM's Drain): hand the
//     connection off (close code 4900, the session stays resumable), flush the
//     Writer, and return the record (session, resume URL, last COMMITTED seq)
//     for lease.Session.Run to save under the token before it releases;
//   - lease lost (Lease.Done: expired, taken over, self-fenced): stop the
//     shard at once, without saving anything, and drop uncommitted events
//     (the next owner RESUMEs from the last committed seq and gets them
//     replayed);
//   - the sink refuses a write (fenced or stale session): the same as lost.
//   - Redis lost the shard's session record and the fleet keeps a cache (a
//     data loss took the shard's cached guilds): hand the connection off,
//     flush the Writer (it restarted the record, which is valid), and open
//     the shard with a new session, whose READY and GUILD_CREATEs rebuild
//     the cache;
//
// These steps run on a goroutine of the shard's only while one is due (the
// lease's end starts one through context.AfterFunc), as do its Writer's
// commits and its command loop: an idle shard holds no goroutine of this
// package's or internal/eventsink's, only its gateway's read loop.
//
// Fatal closes: 4004 (authentication failed) is token-wide: the worker stops
// every shard, opens no more, keeps its leases (so no other worker retries the
// bad token in a loop) and reports the error on /readyz, /status and in
// `worker status`, until an operator fixes the token and restarts it. 4010,
// 4012-4014 stop only their shard, the same way. 4011 (sharding required)
// records a split of the shard in the fleet layout (lease.Session.SplitShard);
// the leases then follow the new layout.
//
// The identify budget: a shard refused an IDENTIFY permit because the fleet's
// daily session_start_limit is at its reserve floor stops the same way (it
// keeps its lease, status "budget_floor"), but not for good: one worker-wide
// timer fires when the budget resets (redislimiter.BudgetError.ResetAfter,
// plus Config.BudgetResetMargin; every Config.BudgetRecheck when unknown),
// reads Discord's budget again (GET /gateway/bot), stores it, and reopens the
// stopped shards, which IDENTIFY through the limiter again (budget.go).
//
// Gateway commands (commands.go, docs/commands.md): while it holds a shard's
// lease, the worker sends the shard's queue of commands from Redis on its
// gateway, in order, through the send limiter, claiming and recording each
// with scripts fenced by the lease token. A sent command stays queued (in
// flight, not claimed again) until Discord ACKs a heartbeat written after
// it; one whose connection ended first is sent again on the next, and one
// its owner could not confirm (a crash, a lost lease, a handoff while the
// connection was down) is sent again, first, by the next owner (at least
// once). A handoff stops the queue first. The owners of
// a split shard's children move what was still queued for it
// (commands_split.go). Every IDENTIFY carries the fleet's presence stored in
// Redis (presence.go).
//
// Config.EventHandler sees, in fleet mode, exactly what the shard's Writer
// committed, after the commit (handler.go); pkg/fleet/member is the public
// face of this package, and cmd/worker runs it.
//
// It is not for: deciding who owns what (internal/lease), the gateway
// protocol (pkg/gateway), or process concerns such as flags, signals and HTTP
// (cmd/worker).
package worker
