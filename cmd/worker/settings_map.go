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
	"lease.WorkerID":              "WORKER_ID (-worker-id)",
	"lease.Prefix":                "KEY_PREFIX (-key-prefix)",
	"lease.Partitions":            "PARTITIONS (-partitions)",
	"redislimiter.MaxConcurrency": "MAX_CONCURRENCY (-max-concurrency)",
	"redislimiter.Window":         "IDENTIFY_WINDOW (-identify-window)",
	"redislimiter.Margin":         "IDENTIFY_MARGIN (-identify-margin)",
	"redislimiter.KeyPrefix":      "KEY_PREFIX (-key-prefix)",
	"redislimiter.BudgetReserve":  "IDENTIFY_BUDGET_RESERVE (-identify-budget-reserve)",
	"worker.ShardCount":           "SHARD_COUNT (-shard-count)",
	"worker.MaxConcurrency":       "MAX_CONCURRENCY (-max-concurrency)",
	"worker.IdentifyWindow":       "IDENTIFY_WINDOW (-identify-window)",
	"worker.APIURL":               "DISCORD_API_URL (-api-url)",
	"worker.Token":                "DISCORD_TOKEN (-token)",
}

// asSettingError turns a library's *gateway.ConfigError into a *SettingError
// naming the worker setting to fix, keeping the library's reason; other
// errors, and fields the worker does not expose, pass unchanged.
func asSettingError(err error) error {
	var ce *gateway.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	setting, ok := librarySettings[ce.Package+"."+ce.Field]
	if !ok {
		return err
	}
	return &SettingError{Setting: setting, Reason: ce.Field + " " + ce.Reason}
}
