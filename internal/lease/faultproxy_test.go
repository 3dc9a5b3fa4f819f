package lease

import (
	"testing"

	"github.com/shardfleet/shardfleet/internal/faultproxy"
)

// faultMode is what the proxy does to traffic.
type faultMode int

const (
	faultPass      faultMode = iota // forward everything
	faultBlackhole                  // forward nothing until healed (a partition)
)

// faultProxy is internal/faultproxy between one client and Redis, with the
// modes these tests use; SetLatency, Reset and Addr come from it.
type faultProxy struct{ *faultproxy.Proxy }

func newFaultProxy(t testing.TB, upstream string) *faultProxy {
	t.Helper()
	p, err := faultproxy.New(upstream)
	if err != nil {
		t.Fatalf("fault proxy: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return &faultProxy{p}
}

func (p *faultProxy) Set(m faultMode) {
	if m == faultBlackhole {
		p.Blackhole()
		return
	}
	p.Heal()
}
