package lease

import "github.com/shardfleet/shardfleet/internal/keyspace"

// The fleet's keys are named by internal/keyspace (docs/keyspace.md); these
// are its names, kept here so that the lease package reads as before.

// DefaultPrefix is the key prefix used when Config.Prefix is empty.
const DefaultPrefix = keyspace.DefaultPrefix

// Keys names a fleet's Redis keys (see keyspace.Keys).
type Keys = keyspace.Keys

// NewKeys returns the keys for prefix (see keyspace.NewKeys).
func NewKeys(prefix string) Keys { return keyspace.NewKeys(prefix) }

// NormalizePrefix applies the fleet's one prefix rule (see keyspace.NormalizePrefix).
func NormalizePrefix(prefix string) string { return keyspace.NormalizePrefix(prefix) }
