package worker

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// presenceReadTimeout bounds reading the fleet's presence before an
// IDENTIFY; past it the shard identifies with Config.Presence.
const presenceReadTimeout = time.Second

// fleetPresence is every shard's PresenceSource in fleet mode: the presence
// stored in Redis (pkg/fleet's SetPresence), or nil (Config.Presence) when
// there is none or it cannot be read now.
func (w *Worker) fleetPresence(ctx context.Context) *gateway.PresenceUpdate {
	ctx, cancel := context.WithTimeout(ctx, presenceReadTimeout)
	defer cancel()
	b, err := w.cfg.Redis.Get(ctx, keyspace.NewKeys(w.cfg.KeyPrefix).Presence()).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	var p gateway.PresenceUpdate
	if err == nil {
		err = json.Unmarshal(b, &p)
	}
	if err != nil {
		w.log.Warn("read the fleet's presence; identifying with PRESENCE", "err", err)
		return nil
	}
	return &p
}

// seedPresence stores Config.Presence as the fleet's presence unless the
// fleet has one: the first worker's PRESENCE starts the fleet's, and a
// presence set since (by a bot or `worker send -all -op 3`) is kept.
func (w *Worker) seedPresence(ctx context.Context) {
	if w.cfg.Presence == nil {
		return
	}
	b, _ := json.Marshal(w.cfg.Presence) // validated by New
	if err := w.cfg.Redis.SetNX(ctx, keyspace.NewKeys(w.cfg.KeyPrefix).Presence(), b, 0).Err(); err != nil {
		w.log.Warn("store the start-up presence", "err", err)
	}
}
