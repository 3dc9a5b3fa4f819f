package gateway

import (
	"testing"
	"time"
)

// SetZlibIdleAfter sets the quiet period after which a zlib-stream
// connection releases its inflater, until the test ends. Tests using it must
// not run in parallel.
func SetZlibIdleAfter(t testing.TB, d time.Duration) {
	old := zlibIdleAfter
	zlibIdleAfter = d
	t.Cleanup(func() { zlibIdleAfter = old })
}

// ZlibIdleReleases counts the idle releases of every zlib-stream connection.
func ZlibIdleReleases() int64 { return zlibIdleReleases.Load() }
