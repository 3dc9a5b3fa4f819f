//go:build race

package worker

// raceBuild: the race detector drops a quarter of sync.Pool puts, so
// allocation counts do not hold under it.
const raceBuild = true
