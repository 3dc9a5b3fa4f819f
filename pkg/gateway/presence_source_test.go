package gateway_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// TestPresenceSourceAtEveryIdentify: the PresenceSource is asked before each
// IDENTIFY, so a re-identify carries the presence as it is then, not as it
// was when the gateway was built.
func TestPresenceSourceAtEveryIdentify(t *testing.T) {
	s := newFake(t)
	var status atomic.Value
	status.Store("idle")
	g := newShard(t, s, nil, gateway.WithPresence(gateway.PresenceUpdate{Status: "online"}),
		gateway.WithPresenceSource(func(context.Context) *gateway.PresenceUpdate {
			return &gateway.PresenceUpdate{Status: status.Load().(string)}
		}))
	open(t, g)
	status.Store("dnd")
	g.Close(context.Background()) // ends the session: the next Open IDENTIFYs
	open(t, g)
	ids := s.Identifies()
	if len(ids) != 2 {
		t.Fatalf("%d identifies, want 2", len(ids))
	}
	for i, want := range []string{"idle", "dnd"} {
		var p struct {
			Status     string            `json:"status"`
			Activities []json.RawMessage `json:"activities"`
		}
		if err := json.Unmarshal(ids[i].Presence, &p); err != nil || p.Status != want || p.Activities == nil {
			t.Fatalf("identify %d presence %s, want status %s with activities []", i, ids[i].Presence, want)
		}
	}
}
