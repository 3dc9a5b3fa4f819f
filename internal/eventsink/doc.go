// Package eventsink writes a shard's gateway dispatches into a Redis stream,
// exactly once, fenced by the shard's lease.
//
// # What it is for
//
// A worker that owns shard (id, count) through a lease hands every dispatch of
// that shard to a Writer. The Writer batches events (one batcher goroutine per
// shard, running only while the shard has events to commit, flushing when
// BatchSize events or MaxBatchBytes are pending, or after FlushInterval) and
// commits each batch with ONE Lua script that, atomically:
//
//  1. checks the lease is valid for the writer: HGET lease owner == worker ID,
//     HGET lease token == fencing token, EXISTS member key of the worker; else
//     ErrFenced and nothing is written (a stale owner's events are rejected);
//  2. checks the batch's session against the session record P+"session:"+count+":"+id:
//     a batch that starts with READY of a new session resets the record
//     (session_id, resume_url, seq = 0); a batch of another session without
//     READY is ErrStaleSession; an empty record adopts the batch's session;
//  3. XADDs only the events whose seq is above the record's seq (replays after
//     a RESUME and re-runs of the same batch by go-redis retries write nothing;
//     retry_idempotency_test.go loses real replies through internal/faultproxy
//     so that go-redis, or the Writer, re-runs a batch that did commit);
//  4. raises the record's seq to the last committed one, so the record is the
//     resume point a new owner RESUMEs from after a handoff or a crash;
//  5. with WithCache, applies each committed event's state-cache changes
//     (internal/cache) in the same script, so that the cache is exactly as
//     consistent as the stream (cache.go).
//
// # The stream
//
// One stream per partition of the fleet (internal/keyspace), S+"events", S
// the prefix of the partition of the event's shard (the fleet's prefix when
// it has one partition), with its own {hash tag}, so the script's keys share
// one Redis Cluster slot; each capped with XADD MAXLEN ~ MaxLen. Each entry
// has the fields:
//
//	shard    shard ID (decimal)
//	count    shard count (decimal)
//	seq      the dispatch's sequence number in its session (decimal)
//	session  the Discord session ID
//	type     the dispatch type, e.g. MESSAGE_CREATE, READY, RESUMED
//	data     the raw JSON of the dispatch's `d`
//	fence    the writer's lease fencing token (never the bot token)
//	old      only with the cache's Old (CACHE_OLD): for an update or delete
//	         event, the object the state cache held before it, when it held one
//
// Consumers read it with XREADGROUP (one consumer group per application) and
// filter on `type`. (shard, session, seq) identifies an event; within one
// session of one shard, seq only grows and no seq appears twice.
//
// # What it is not for
//
// It does not decide who owns a shard (internal/lease does) and does not read
// the stream for consumers. It never stores the bot token.
package eventsink
