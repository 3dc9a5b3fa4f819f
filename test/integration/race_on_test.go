//go:build race

package integration

// raceBuild: the test binary runs with -race, so the processes it starts do too.
const raceBuild = true
