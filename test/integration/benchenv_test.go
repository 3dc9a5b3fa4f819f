package integration

import (
	"errors"
	"os"
	"strconv"
	"testing"
	"time"
)

// The benchmarks take their shape from environment variables (SCALE_*,
// E2E_*, BACKLOG_BENCH_*, CLUSTER_*). Unset or empty, a setting takes its
// default; set, it must parse and be in range, or the benchmark fails
// naming it: a typo must not run another measurement than the one asked
// for, under the figures of the one asked for.
func envSetting[T any](tb testing.TB, name string, def T, parse func(string) (T, error)) T {
	tb.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := parse(s)
	if err != nil {
		tb.Fatalf("%s=%q: %v", name, s, err)
	}
	return v
}

// envInt is the positive integer in name, or def.
func envInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	return envSetting(tb, name, def, func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		return n, inRange(n, err, false)
	})
}

// envDuration is the duration in name (above 0, or 0 too with zeroOK), or def.
func envDuration(tb testing.TB, name string, def time.Duration, zeroOK bool) time.Duration {
	tb.Helper()
	return envSetting(tb, name, def, func(s string) (time.Duration, error) {
		d, err := time.ParseDuration(s)
		return d, inRange(d, err, zeroOK)
	})
}

// envFloat is the number in name (above 0, or 0 too with zeroOK), or def.
func envFloat(tb testing.TB, name string, def float64, zeroOK bool) float64 {
	tb.Helper()
	return envSetting(tb, name, def, func(s string) (float64, error) {
		f, err := strconv.ParseFloat(s, 64)
		return f, inRange(f, err, zeroOK)
	})
}

// inRange passes on a parse error, and refuses v below 0, or 0 itself
// unless zeroOK (and NaN, which is neither above nor at 0).
func inRange[T int | float64 | time.Duration](v T, err error, zeroOK bool) error {
	switch {
	case err != nil:
		return err
	case v > 0 || v == 0 && zeroOK:
		return nil
	case zeroOK:
		return errors.New("want 0 or more")
	}
	return errors.New("want more than 0")
}

// A set benchmark setting that does not parse, or is out of range, is
// refused; an unset or empty one takes the default.
func TestBenchSettingsRefuseWhatTheyCannotRead(t *testing.T) {
	const name = "SHARDFLEET_TEST_BENCH_SETTING"
	for _, tc := range []struct {
		value string
		read  func(tb testing.TB) any
		want  any // nil: refused
	}{
		{"", func(tb testing.TB) any { return envInt(tb, name, 7) }, 7},
		{"12", func(tb testing.TB) any { return envInt(tb, name, 7) }, 12},
		{"0", func(tb testing.TB) any { return envInt(tb, name, 7) }, nil},
		{"1o", func(tb testing.TB) any { return envInt(tb, name, 7) }, nil},
		{"600s", func(tb testing.TB) any { return envDuration(tb, name, time.Second, false) }, 600 * time.Second},
		{"600", func(tb testing.TB) any { return envDuration(tb, name, time.Second, false) }, nil},
		{"0s", func(tb testing.TB) any { return envDuration(tb, name, time.Second, false) }, nil},
		{"0s", func(tb testing.TB) any { return envDuration(tb, name, time.Second, true) }, time.Duration(0)},
		{"-1s", func(tb testing.TB) any { return envDuration(tb, name, time.Second, true) }, nil},
		{"0", func(tb testing.TB) any { return envFloat(tb, name, 50, true) }, 0.0},
		{"0", func(tb testing.TB) any { return envFloat(tb, name, 50, false) }, nil},
		{"NaN", func(tb testing.TB) any { return envFloat(tb, name, 50, true) }, nil},
		{"fifty", func(tb testing.TB) any { return envFloat(tb, name, 50, true) }, nil},
	} {
		t.Setenv(name, tc.value)
		r := &refusals{TB: t}
		got := func() (v any) {
			defer func() {
				if recover() != nil {
					v = nil
				}
			}()
			return tc.read(r)
		}()
		if tc.want == nil {
			if r.msg == "" {
				t.Errorf("%q: read as %v, want it refused", tc.value, got)
			}
			continue
		}
		if r.msg != "" || got != tc.want {
			t.Errorf("%q: got %v (refused: %q), want %v", tc.value, got, r.msg, tc.want)
		}
	}
}

// refusals records a Fatalf and stops the read there, as FailNow would.
type refusals struct {
	testing.TB
	msg string
}

func (r *refusals) Helper() {}

func (r *refusals) Fatalf(format string, args ...any) {
	r.msg = format
	panic("refused")
}
