// Package redislimiter is the fleet-wide IDENTIFY rate limiter of shardfleet: one
// Limiter per process, all of them coordinated through Redis, behave as a single
// limiter for the whole bot.
//
// Discord allows one IDENTIFY per rate-limit key (shardID % max_concurrency) per
// 5 s. A Limiter grants one permit per bucket at a time, across every process that
// shares the Redis and the key prefix; the next permit of a bucket comes no sooner
// than the holder's UnlockBucket + window + margin, measured on Redis server time
// (TIME inside the scripts). Waiters of a bucket are served first in, first out
// across processes: each waiter holds a ticket in a per-bucket queue, and only the
// head of the queue can be granted. Waiters sleep until a pub/sub notification or
// a timed fallback, never polling tightly.
//
// Failure behaviour: when Redis cannot be reached, WaitBucket returns an error and
// never a permit (fail closed). A holder that crashes frees its bucket after
// HoldTTL. A waiter that crashes leaves a ticket that expires after TicketTTL.
// When a Limiter notices that Redis lost its data (restart without persistence,
// failover, FLUSHALL), no bucket is granted for HoldTTL + window + margin, so
// permits given before the loss cannot overlap with new ones. The loss is
// noticed by a limiter that saw the old state, on its next script call. A Redis
// without the fleet's state that nobody knew (a new Redis, or a lost one whose
// whole fleet restarted too) grants nothing for one window + margin, because
// Discord may still count IDENTIFYs sent just before (unless Config.TrustNewEpoch:
// the workers' leases keep a lost Redis from IDENTIFYing new shards until its
// holders are back, so a new fleet starts at once). A Limiter learns the epoch
// on its first script call, or earlier through LearnEpoch. What remains open: a
// brand-new process that reaches a lost Redis before any older one calls gets
// only that shorter quiet period. go-redis retries a script whose reply was lost
// although Redis ran it; every script is idempotent under that replay: a replayed
// grant answers the same grant and takes the budget once, a replayed unlock the
// same cooldown, a replayed leave finds nothing left to do (the tests lose real
// replies through internal/faultproxy: retry_idempotency_test.go).
//
// Cancellation: a cancelled ctx makes WaitBucket return ctx.Err() at once while
// it sleeps; for it to also cut a Redis call in flight, the go-redis client
// needs ContextTimeoutEnabled (otherwise the call's ReadTimeout bounds it).
// Configuration errors are kept by New (which returns no error) and returned by
// Err and by every WaitBucket.
//
// The package also keeps the daily session_start_limit budget (SetBudget,
// Budget), decremented by the grant itself; a permit refused at its floor is a
// *BudgetError that says when the budget resets (ResetAfter), so the caller can
// wait for it and store Discord's fresh figures. It also stores max_concurrency for the
// fleet (StoreMaxConcurrency, LoadMaxConcurrency; sharding.FetchGatewayBot reads it from Discord).
//
// It is not a general-purpose rate limiter (it paces one kind of permit, one at a
// time per bucket), does not decide which worker runs which shard (internal/lease
// does), and does not talk to the Discord gateway. RESUMEs must not go through it.
package redislimiter
