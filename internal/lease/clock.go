package lease

import "time"

// clock is the local clock the session measures its safety durations on:
// the self-fence (RenewDeadline from the send time of the last successful
// renew) and the data-loss grace Run waits out. Only differences of its own
// readings mean anything: a Time from one clock must never be compared with
// another clock's (or time.Now's), so an offset between clocks is harmless and
// only the rate error matters (Config.MaxClockDrift bounds it).
//
// The session uses realClock; tests in this package replace it (see
// sessionHooks) with one that runs fast or slow against real time, because
// Redis counts the TTL on real time.
type clock interface {
	Now() time.Time
	Since(t time.Time) time.Duration
	Until(t time.Time) time.Duration
	// NewTimer fires once after d on this clock.
	NewTimer(d time.Duration) clockTimer
}

// clockTimer is the part of *time.Timer the session uses (Go 1.23 timer
// semantics: Reset and Stop never leave a stale value in C).
type clockTimer interface {
	C() <-chan time.Time
	Reset(d time.Duration) bool
	Stop() bool
}

// realClock is the process's monotonic clock (time.Now carries a monotonic
// reading, so Since and Until ignore wall-clock steps).
type realClock struct{}

var _ clock = realClock{}

func (realClock) Now() time.Time                  { return time.Now() }
func (realClock) Since(t time.Time) time.Duration { return time.Since(t) }
func (realClock) Until(t time.Time) time.Duration { return time.Until(t) }
func (realClock) NewTimer(d time.Duration) clockTimer {
	return realTimer{time.NewTimer(d)}
}

type realTimer struct{ t *time.Timer }

var _ clockTimer = realTimer{}

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
