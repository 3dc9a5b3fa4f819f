package eventsink

import (
	"strconv"
	"strings"
)

// Shard names one shard of a layout.
type Shard struct {
	ID    int
	Count int
}

// Fence is what the writer proves it owns: its worker ID and the lease's
// fencing token.
type Fence struct {
	WorkerID string
	Token    uint64
}

// Keys builds the fleet's Redis keys from its prefix, per the shared schema
// (internal/lease writes the lease and member keys; the sink reads them).
type Keys struct {
	Prefix string // contains one {hash tag}, e.g. "{shardfleet}:"
}

// Lease is P+"lease:"+count+":"+id, a HASH {owner, token}.
func (k Keys) Lease(s Shard) string { return k.Prefix + "lease:" + shardSuffix(s) }

// Session is P+"session:"+count+":"+id, a HASH {session_id, seq, resume_url, token}.
func (k Keys) Session(s Shard) string { return k.Prefix + "session:" + shardSuffix(s) }

// Member is P+"member:"+workerID, the worker's liveness key.
func (k Keys) Member(workerID string) string { return k.Prefix + "member:" + workerID }

// Stream is P+"events", the event stream.
func (k Keys) Stream() string { return k.Prefix + "events" }

func shardSuffix(s Shard) string { return strconv.Itoa(s.Count) + ":" + strconv.Itoa(s.ID) }

// hasHashTag reports whether p holds a non-empty {hash tag}.
func hasHashTag(p string) bool {
	open := strings.Index(p, "{")
	return open >= 0 && strings.Index(p[open:], "}") > 1
}
