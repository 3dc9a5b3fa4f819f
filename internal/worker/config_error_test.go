package worker

import (
	"context"
	"errors"
	"testing"

	"github.com/shardfleet/shardfleet/internal/eventsink"
	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/redislimiter"
)

// TestOneConfigErrorType: every package rejects a bad configuration with the
// one *gateway.ConfigError, naming itself and the field, matching the one
// gateway.ErrInvalidConfig (each package's ErrInvalidConfig is that one).
func TestOneConfigErrorType(t *testing.T) {
	_, leaseErr := lease.NewSession(context.Background(), nil, lease.LocalConfig())
	_, sinkErr := eventsink.New(nil)
	_, workerErr := New(Config{})
	limiterErr := redislimiter.New(nil).Err()
	for _, tc := range []struct {
		pkg, field string
		err        error
		sentinel   error
	}{
		{"lease", "client", leaseErr, lease.ErrInvalidConfig},
		{"eventsink", "client", sinkErr, eventsink.ErrInvalidConfig},
		{"worker", "Token", workerErr, ErrInvalidConfig},
		{"redislimiter", "client", limiterErr, redislimiter.ErrInvalidConfig},
	} {
		var ce *gateway.ConfigError
		if !errors.As(tc.err, &ce) || ce.Package != tc.pkg || ce.Field != tc.field {
			t.Errorf("%s: %v (%T); want a *gateway.ConfigError of %s.%s", tc.pkg, tc.err, tc.err, tc.pkg, tc.field)
			continue
		}
		if !errors.Is(tc.err, gateway.ErrInvalidConfig) || tc.sentinel != gateway.ErrInvalidConfig {
			t.Errorf("%s: %v does not match the one ErrInvalidConfig", tc.pkg, tc.err)
		}
	}
}
