package fleet

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	skipExamplesWithoutRedis()
	goleak.VerifyTestMain(m)
}

// skipExamplesWithoutRedis skips the examples that start a redis-server
// when there is none, as internal/redistest skips tests (an example cannot
// skip itself); with REDISTEST_REQUIRE=1 (CI) they run, and fail.
func skipExamplesWithoutRedis() {
	if _, err := exec.LookPath("redis-server"); err == nil || os.Getenv("REDISTEST_REQUIRE") == "1" {
		return
	}
	flag.Parse()
	skip := "^Example_member$"
	if prev := flag.Lookup("test.skip").Value.String(); prev != "" {
		skip = prev + "|" + skip
	}
	_ = flag.Set("test.skip", skip)
	fmt.Fprintln(os.Stderr, "fleet: redis-server not on PATH: skipping", skip)
}
