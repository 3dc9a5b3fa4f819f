package eventsink

import "github.com/shardfleet/shardfleet/internal/lease"

// Shard names one shard of a layout (the lease package's key).
type Shard = lease.ShardKey

// Fence is what the writer proves it owns: its worker ID and the lease's
// fencing token.
type Fence struct {
	WorkerID string
	Token    uint64
}
