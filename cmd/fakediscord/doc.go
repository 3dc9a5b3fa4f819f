// Command fakediscord runs the fake Discord of pkg/gateway/gatewaytest as a
// process, for multi-process tests and for trying a bot without Discord.
//
// It serves REST under /api/v10, the gateway at /gateway (and
// /resume-gateway), and the control API under /_fake/ (see the gatewaytest
// package documentation), all on -addr. It prints its URLs when it starts,
// the first line being "fakediscord listening on http://HOST:PORT", and
// stops on SIGINT or SIGTERM. It never prints the token.
//
// It is not for production traffic, and its control API has no
// authentication: keep it on loopback.
//
// Usage:
//
//	fakediscord -addr 127.0.0.1:0 -token T -shards 4 -max-concurrency 1 \
//	    -identify-window 5s -guilds 100 -heartbeat-interval 41.25s \
//	    -events-per-second 0 -resume-timeout 2m -max-guilds-per-shard 2500
//
// Flags not named here: -heartbeat-timeout, -session-start-total,
// -session-start-reset-after, -send-limit, -send-window, -replay-buffer, -v.
package main
