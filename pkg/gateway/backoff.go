package gateway

import (
	"math/rand/v2"
	"time"
)

// backoffDelay is the wait before reconnect attempt n (0-based): "full jitter",
// uniform in [0, min(maxDelay, minDelay*2^n)). rnd returns a float in [0,1).
// Jitter spreads the reconnects of many shards that dropped together.
func backoffDelay(n int, minDelay, maxDelay time.Duration, rnd func() float64) time.Duration {
	ceiling := minDelay
	for i := 0; i < n && ceiling < maxDelay; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, maxDelay)
	return time.Duration(rnd() * float64(ceiling))
}

// heartbeatJitter is the wait before the first heartbeat: interval * [0,1)
// (reference §4), so shards that connected together do not beat together.
func heartbeatJitter(interval time.Duration, rnd func() float64) time.Duration {
	return time.Duration(rnd() * float64(interval))
}

// defaultRand is the jitter source; math/rand/v2's top-level functions are
// safe for concurrent use.
var defaultRand = rand.Float64
