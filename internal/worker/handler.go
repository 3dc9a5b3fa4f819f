package worker

import (
	"encoding/json"

	"github.com/shardfleet/shardfleet/internal/eventsink"
	"github.com/shardfleet/shardfleet/pkg/fleet"
	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// Config.EventHandler's two sources: in local mode the gateway's delivery
// (there is no stream), in fleet mode the shard writer's commits, so the
// handler sees what the stream holds and nothing the sink refused.

// handleDelivered gives a dispatch to the handler as the gateway delivered
// it (local mode).
func (w *Worker) handleDelivered(g gateway.Gateway, t gateway.EventType, seq int, data json.RawMessage) {
	ev := fleet.Event{Shard: g.ShardID(), Count: g.ShardCount(), Seq: seq, Type: string(t), Data: data}
	if s := g.SessionID(); s != nil {
		ev.Session = *s
	}
	w.cfg.EventHandler(ev)
}

// committedSinkOption gives the handler, if any, each batch a shard's writer
// committed (fleet mode), on the writer's goroutine.
func (w *Worker) committedSinkOption() eventsink.Option {
	h := w.cfg.EventHandler
	if h == nil {
		return eventsink.WithCommitted(nil)
	}
	return eventsink.WithCommitted(func(shard eventsink.Shard, evs []eventsink.Event) {
		for _, e := range evs {
			h(fleet.Event{Shard: shard.ID, Count: shard.Count, Seq: e.Seq, Session: e.SessionID, Type: e.Type, Data: e.Data})
		}
	})
}
