package gateway

import "context"

// PresenceSource returns the presence the next IDENTIFY carries, or nil for
// Config.Presence. It runs before every IDENTIFY (re-identifies included), so
// a presence that changes while the shard runs (a fleet-wide one in Redis)
// reaches every new session; ctx ends with the connection attempt.
type PresenceSource func(ctx context.Context) *PresenceUpdate

// WithPresenceSource sets the PresenceSource.
func WithPresenceSource(source PresenceSource) ConfigOpt {
	return func(c *Config) { c.PresenceSource = source }
}
