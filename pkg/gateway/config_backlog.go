package gateway

// DefaultBacklogBytes is a shard's default bound on the dispatches queued
// for its handler: 4 MiB is some 4,000 typical events, seconds of a busy
// shard, and 4 GiB for a process of 1,000 shards that all fall behind at
// once (share a BacklogBudget to bound that).
const DefaultBacklogBytes = 4 << 20

// WithBacklogBytes bounds the bytes of dispatches queued for the handler.
// The dispatch that reaches it is still queued; then the shard stops reading:
// it closes the connection resumably (CloseCodeReconnect), lets the handler
// drain the queue to half the bound, and RESUMEs from the last sequence it
// received (no identify permit, no reconnect backoff), so Discord replays
// what it sent meanwhile and nothing is lost, as long as the handler drains
// within Discord's resume window (a few minutes). Heartbeats of other shards
// are not affected. Default DefaultBacklogBytes.
func WithBacklogBytes(bytes int64) ConfigOpt { return func(c *Config) { c.BacklogBytes = bytes } }

// WithBacklogBudget shares a budget among shards: each counts its queued
// dispatches in it too, and pauses as above while the budget is spent.
func WithBacklogBudget(budget *BacklogBudget) ConfigOpt {
	return func(c *Config) { c.BacklogBudget = budget }
}
