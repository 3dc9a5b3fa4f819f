package main

import (
	"encoding/json"
	"io"
	"sync"

	"github.com/shardfleet/shardfleet/pkg/fleet"
)

// eventLine is one dispatch as EVENTS=stdout writes it: one JSON object per
// line, so `worker -sim -events stdout | jq` shows the events.
type eventLine struct {
	ShardID    int             `json:"shard_id"`
	ShardCount int             `json:"shard_count"`
	Seq        int             `json:"seq"`
	Type       string          `json:"type"`
	Data       json.RawMessage `json:"data"`
}

// jsonLines returns an event handler writing each dispatch to out as a JSON
// line. Shards call it from their own goroutines; the lock keeps lines whole.
func jsonLines(out io.Writer) func(fleet.Event) {
	var mu sync.Mutex
	enc := json.NewEncoder(out)
	return func(e fleet.Event) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(eventLine{ShardID: e.Shard, ShardCount: e.Count, Seq: e.Seq, Type: e.Type, Data: e.Data})
	}
}
