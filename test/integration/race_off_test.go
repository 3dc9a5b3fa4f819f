//go:build !race

package integration

// raceBuild: the test binary runs without -race (e.g. benchmarks), so the
// processes it starts do too.
const raceBuild = false
