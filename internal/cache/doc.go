// Package cache turns gateway dispatches into changes of the fleet's shared
// Discord state cache in Redis (issue 11), and reads that cache back.
//
// The cache changes in the same fenced script as the stream entry of its
// event (internal/eventsink), and only when that script commits the event:
// a replay after RESUME, a go-redis retry or a stale owner changes nothing.
// This package owns both halves of that change: Config.Changes computes, in
// Go, the operations a dispatch makes (parsing only the dispatches of an
// enabled kind), and Lua applies them inside the commit script. The
// operations are generic (put, replace, merge top-level fields, push a
// message...), so the script knows no dispatch type.
//
// The layout (keys in internal/keyspace, documented in docs/keyspace.md) and
// the JSON shape of Dump follow the cache contract of issue 11: one HASH per
// kind per guild, every guild's keys under its shard's scope, a SET of the
// guilds cached per shard.
package cache
