package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// A library's config error comes out naming the worker setting that feeds
// the field, with the library's reason.
func TestLibraryConfigErrorNamesTheSetting(t *testing.T) {
	lib := fmt.Errorf("fleet session: %w", gateway.NewConfigError("lease", "TTL", "900ms must exceed RenewDeadline 1s"))
	var se *gateway.ConfigError
	if err := asSettingError(lib); !errors.As(err, &se) || se.Setting != "LEASE_TTL (-lease-ttl)" ||
		!errors.Is(err, gateway.ErrInvalidConfig) ||
		err.Error() != "config: LEASE_TTL (-lease-ttl): TTL 900ms must exceed RenewDeadline 1s" {
		t.Fatalf("mapped %v to %v", lib, err)
	}
	stored := gateway.NewConfigError("lease", "Partitions", "16, but the fleet stores 1 partitions")
	if err := asSettingError(stored); !errors.As(err, &se) || se.Setting != "PARTITIONS (-partitions)" {
		t.Fatalf("mapped %v to %v", stored, err)
	}
	other := gateway.NewConfigError("gateway", "LargeThreshold", "x")
	if err := asSettingError(other); err != error(other) {
		t.Fatalf("an unmapped field became %v", err)
	}
}
