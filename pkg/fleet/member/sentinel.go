package member

import (
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/failover"
)

// NewSentinelClient returns the Sentinel client `worker` uses, for
// Config.Redis: go-redis's failover client, which also listens to
// +switch-master on every sentinel in opt.SentinelAddrs and moves to the new
// master as soon as the first of them reports it (go-redis alone follows one
// sentinel, which may hear of a failover seconds after the others). Members
// of one fleet that follow different sentinels would otherwise write to two
// masters at once, and the commits made to the old one are lost. log gets
// one warning per switch acted on; nil logs nothing. Close the client when
// done: it also ends the sentinel subscriptions.
func NewSentinelClient(opt *redis.FailoverOptions, log *slog.Logger) redis.UniversalClient {
	return failover.NewClient(opt, log)
}
