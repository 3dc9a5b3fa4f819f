package main

import (
	"log/slog"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// simDefaultShards is the shard count -sim uses when SHARD_COUNT is 0.
const simDefaultShards = 4

// startSim starts the in-process fake Discord for -sim and points cfg at it:
// its token (a real token is never sent to the fake), its REST and gateway
// URLs. Unless IDENTIFY_WINDOW was given, the fake and the worker use a 1 s
// window so the demo comes up quickly.
func startSim(cfg *Config, logger *slog.Logger) (*gatewaytest.Server, error) {
	if !cfg.Token.IsZero() {
		logger.Warn("-sim ignores DISCORD_TOKEN: the fake Discord has its own token")
	}
	if !cfg.isSet("IDENTIFY_WINDOW") {
		cfg.IdentifyWindow = time.Second
	}
	shards := cfg.ShardCount
	if shards == 0 {
		shards = simDefaultShards
	}
	fake := gatewaytest.NewServer(
		gatewaytest.WithShards(shards),
		gatewaytest.WithGuilds(cfg.SimGuilds),
		gatewaytest.WithEventsPerSecond(cfg.SimEventsPerSecond),
		gatewaytest.WithIdentifyWindow(cfg.IdentifyWindow),
		gatewaytest.WithHeartbeatInterval(5*time.Second),
	)
	cfg.Token = NewSecret(fake.Token())
	cfg.APIURL, cfg.GatewayURL = fake.APIURL(), fake.GatewayURL()
	logger.Info("sim: fake Discord started", "url", fake.URL(), "shards", shards, "guilds", cfg.SimGuilds,
		"events_per_second", cfg.SimEventsPerSecond, "identify_window", cfg.IdentifyWindow)
	return fake, nil
}
