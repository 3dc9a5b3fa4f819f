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
// HoldTTL. A waiter that crashes leaves a ticket that expires after TicketTTL. When
// a Limiter notices that Redis lost its data (restart without persistence,
// failover), no bucket is granted for HoldTTL + window + margin, so permits given
// before the loss cannot overlap with new ones. The loss is noticed by a limiter
// that saw the old state (its next script call); a brand-new process that never
// saw it, and that calls before any older one, cannot tell a lost Redis from a
// new one and may be granted at once: that residual window is documented, not
// closed.
//
// Cancellation: a cancelled ctx makes WaitBucket return ctx.Err() at once while
// it sleeps; for it to also cut a Redis call in flight, the go-redis client
// needs ContextTimeoutEnabled (otherwise the call's ReadTimeout bounds it).
// Configuration errors are kept by New (which returns no error) and returned by
// Err and by every WaitBucket.
//
// The package also keeps the daily session_start_limit budget (SetBudget,
// Budget), decremented by the grant itself, and stores max_concurrency for the
// fleet (FetchGatewayBot, StoreMaxConcurrency, LoadMaxConcurrency).
//
// It is not a general-purpose rate limiter (it paces one kind of permit, one at a
// time per bucket), does not decide which worker runs which shard (internal/lease
// does), and does not talk to the Discord gateway. RESUMEs must not go through it.
package redislimiter
