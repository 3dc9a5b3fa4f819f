package main

import (
	"errors"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// librarySettings maps a library's config field ("package.Field") to the
// worker setting that feeds it. Fields the worker derives from several
// settings name all of them.
var librarySettings = map[string]string{
	"lease.TTL":                   "LEASE_TTL (-lease-ttl)",
	"lease.RenewInterval":         "LEASE_RENEW_INTERVAL (-lease-renew-interval)",
	"lease.RenewDeadline":         "LEASE_RENEW_DEADLINE (-lease-renew-deadline)",
	"lease.DataLossGrace":         "LEASE_TTL (-lease-ttl) / LEASE_RENEW_DEADLINE (-lease-renew-deadline)",
	"lease.DataLossProbe":         "LEASE_RENEW_INTERVAL (-lease-renew-interval)",
	"lease.TickInterval":          "LEASE_TTL (-lease-ttl)",
	"lease.TickJitter":            "LEASE_TTL (-lease-ttl)",
	"lease.JoinGrace":             "LEASE_TTL (-lease-ttl)",
	"lease.RevokeTimeout":         "LEASE_TTL (-lease-ttl)",
	"lease.WorkerID":              "WORKER_ID (-worker-id)",
	"lease.Prefix":                "KEY_PREFIX (-key-prefix)",
	"lease.Partitions":            "PARTITIONS (-partitions)",
	"redislimiter.MaxConcurrency": "MAX_CONCURRENCY (-max-concurrency)",
	"redislimiter.Window":         "IDENTIFY_WINDOW (-identify-window)",
	"redislimiter.Margin":         "IDENTIFY_MARGIN (-identify-margin)",
	"redislimiter.KeyPrefix":      "KEY_PREFIX (-key-prefix)",
	"redislimiter.BudgetReserve":  "IDENTIFY_BUDGET_RESERVE (-identify-budget-reserve)",
	"redislimiter.HoldTTL":        "LEASE_TTL (-lease-ttl) / IDENTIFY_WINDOW (-identify-window)",
	"redislimiter.PollInterval":   "LEASE_TTL (-lease-ttl)",
	"redislimiter.TicketTTL":      "LEASE_TTL (-lease-ttl)",
	"eventsink.MaxLen":            "EVENT_STREAM_MAXLEN (-event-stream-maxlen)",
	"eventsink.BatchSize":         "EVENT_BATCH_SIZE (-event-batch-size)",
	"eventsink.FlushInterval":     "EVENT_FLUSH_INTERVAL (-event-flush-interval)",
	"gateway.token":               "DISCORD_TOKEN (-token)",
	"gateway.Intents":             "INTENTS (-intents)",
	"gateway.Compression":         "COMPRESSION (-compression)",
	"gateway.ReadyTimeout":        "READY_TIMEOUT (-ready-timeout)",
	"gateway.CommandWindow":       "GATEWAY_SEND_WINDOW (-gateway-send-window)",
	"gateway.URL":                 "GATEWAY_URL (-gateway-url)",
	"gateway.APIURL":              "DISCORD_API_URL (-api-url)",
	"gateway.Presence":            "PRESENCE (-presence)",
	"gateway.ReconnectBackoffMin": "LEASE_TTL (-lease-ttl)",
	"gateway.ReconnectBackoffMax": "LEASE_TTL (-lease-ttl)",
	"sharding.token":              "DISCORD_TOKEN (-token)",
	"sharding.ShardCount":         "SHARD_COUNT (-shard-count)",
	"worker.ShardCount":           "SHARD_COUNT (-shard-count)",
	"worker.MaxConcurrency":       "MAX_CONCURRENCY (-max-concurrency)",
	"worker.IdentifyWindow":       "IDENTIFY_WINDOW (-identify-window)",
	"worker.IdentifyMargin":       "IDENTIFY_MARGIN (-identify-margin)",
	"worker.BudgetReserve":        "IDENTIFY_BUDGET_RESERVE (-identify-budget-reserve)",
	"worker.ShutdownTimeout":      "SHUTDOWN_TIMEOUT (-shutdown-timeout)",
	"worker.BacklogShardBytes":    "BACKLOG_SHARD_BYTES (-backlog-shard-bytes)",
	"worker.BacklogWorkerBytes":   "BACKLOG_WORKER_BYTES (-backlog-worker-bytes)",
	"worker.APIURL":               "DISCORD_API_URL (-api-url)",
	"worker.Token":                "DISCORD_TOKEN (-token)",
}

// asSettingError names, in a library's *gateway.ConfigError, the worker
// setting to fix, keeping the library's field and reason; other errors, and
// fields the worker does not expose, pass unchanged.
func asSettingError(err error) error {
	var ce *gateway.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	setting, ok := librarySettings[ce.Package+"."+ce.Field]
	if !ok {
		return err
	}
	return ce.ForSetting(setting)
}
