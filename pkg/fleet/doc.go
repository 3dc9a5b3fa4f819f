// Package fleet is the bot's side of a shardfleet fleet: it sends gateway
// commands (op 3 presence, op 4 voice state, op 8 request guild members)
// through the fleet's Redis to the worker that owns the shard at the time,
// reads their outcomes, sets the fleet-wide presence, and requests guild
// members with the GUILD_MEMBERS_CHUNKs read back from the event stream,
// and consumes the event stream in a consumer group (Consume).
//
// The wire format (keys, fields, outcomes) is docs/commands.md: a bot in any
// language can do what this package does with that page alone. This package
// also holds the format's validation (Validate), which the workers apply
// again to commands queued by other clients.
//
// The Client also reads the fleet's state cache (issue 11), typed: Guild,
// Channel, GuildChannels, Roles, Role, Member, VoiceState, Presence, Emojis,
// Stickers and Messages route the guild to its shard through the fleet's
// layout, as Send does, and return the stored object decoded, with the whole
// JSON in Raw. A missing object is ErrNotCached; a kind the workers' CACHE
// setting does not keep is ErrKindNotCached. Permissions computes a member's
// permissions in a channel from the cache as Discord does
// (ComputePermissions on objects already at hand). The layout, for readers in
// other languages, is docs/cache.md.
//
// A Client takes a go-redis UniversalClient, so one node, Sentinel and
// Cluster all work (every key of a fleet shares one hash tag).
//
// The fleet member itself (leases, identify limiter, handoff, the fenced
// stream, sending these commands) runs in your own Go program with package
// fleet/member; cmd/worker is built on it. Example_member runs one against
// the fake Discord (gatewaytest) and a redis-server of its own, and sets
// the presence through a Client.
package fleet
