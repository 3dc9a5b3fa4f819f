package worker

import (
	"errors"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

var (
	// ErrInvalidConfig is wrapped by every *ConfigError.
	ErrInvalidConfig = gateway.ErrInvalidConfig
	// ErrTokenRejected: Discord rejected the bot token, by closing a shard
	// with 4004 or by answering GET /gateway/bot with 401. Either way the
	// worker stops every shard and opens none until restarted (it keeps
	// serving /healthz, so an orchestrator does not restart it into a loop of
	// rejected IDENTIFYs).
	ErrTokenRejected = errors.New("worker: bot token rejected by Discord: check DISCORD_TOKEN")
	// ErrBudgetFloor: a shard's identify permit was refused because the
	// fleet's daily identify budget is at its reserve floor. The shard stops
	// instead of retrying (it keeps its lease, status "budget_floor") and is
	// reopened once the budget resets.
	ErrBudgetFloor = errors.New("worker: identify budget at its reserve floor")
)

// ConfigError is the project's one configuration error (gateway.ConfigError).
type ConfigError = gateway.ConfigError
