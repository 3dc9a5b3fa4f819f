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
//
// A world worth caching (gatewaytest.World): every guild gets generated
// channels, threads, roles, emojis, stickers, members, voice states and
// presences, the same for the same -world-seed, and GUILD_CREATE carries
// them all:
//
//	fakediscord -guilds 20 -world-seed 1 -channels-per-guild 12 -threads-per-guild 2 \
//	    -roles-per-guild 5 -emojis-per-guild 3 -stickers-per-guild 1 \
//	    -members-per-guild 200 -voice-per-guild 10 -presences-per-guild 50 \
//	    -messages-per-channel 20 -mutations-per-second 5
//
// Without these flags guilds stay as small as before. GET /_fake/state is
// the ground truth (the shape of `worker cache dump`); POST
// /_fake/world/<change> changes the world and sends the dispatches Discord
// would (channel-create, role-delete, member-add, voice, guild-leave,
// guild-unavailable, message-create, ...); POST /_fake/world/mutate?n=N&seed=S
// applies N random changes; -mutations-per-second (or POST
// /_fake/world/mutations-per-second?rate=R) keeps them flowing. The
// gatewaytest package documentation lists every change and its body.
package main
