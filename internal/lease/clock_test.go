package lease

import (
	"strings"
	"testing"
	"time"
)

// skewedClock is a local clock that runs at rate times real time and reads
// offset away from it: a host whose oscillator is off by |1-rate| and whose
// wall clock is wrong. It is built on the real monotonic clock (scaled
// readings, real timers with scaled durations), not on a fake that steps,
// because Redis counts the TTL on real time and the tests race the two.
//
// Its readings carry no monotonic reading, so a reading compared with
// time.Now (instead of with another reading of this clock) is off by the
// offset: code that mixes clocks fails visibly. All fields are immutable.
type skewedClock struct {
	start time.Time // real, with its monotonic reading
	wall  time.Time // what Now read at start: start + offset, monotonic reading stripped
	rate  float64
}

var _ clock = (*skewedClock)(nil)

func newSkewedClock(rate float64, offset time.Duration) *skewedClock {
	now := time.Now()
	return &skewedClock{start: now, wall: now.Round(0).Add(offset), rate: rate}
}

// toLocal converts a real duration to this clock's; toReal does the reverse.
func (c *skewedClock) toLocal(d time.Duration) time.Duration {
	return time.Duration(float64(d) * c.rate)
}

func (c *skewedClock) toReal(d time.Duration) time.Duration {
	return time.Duration(float64(d) / c.rate)
}

func (c *skewedClock) Now() time.Time                  { return c.wall.Add(c.toLocal(time.Since(c.start))) }
func (c *skewedClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }
func (c *skewedClock) Until(t time.Time) time.Duration { return t.Sub(c.Now()) }
func (c *skewedClock) NewTimer(d time.Duration) clockTimer {
	return skewedTimer{c: c, t: time.NewTimer(c.toReal(d))}
}

type skewedTimer struct {
	c *skewedClock
	t *time.Timer
}

var _ clockTimer = skewedTimer{}

func (s skewedTimer) C() <-chan time.Time        { return s.t.C }
func (s skewedTimer) Reset(d time.Duration) bool { return s.t.Reset(s.c.toReal(d)) }
func (s skewedTimer) Stop() bool                 { return s.t.Stop() }

// The test clock must itself be right: its timers never fire before
// d/rate of real time, its readings advance by at most rate x real time,
// and it reads offset away from time.Now without a monotonic reading. Only
// one-sided bounds, so load cannot fail it.
func TestSkewedClock(t *testing.T) {
	const d = 50 * time.Millisecond
	for _, tc := range []struct {
		rate   float64
		offset time.Duration
	}{{0.5, -time.Hour}, {0.9, time.Hour}, {1.1, -time.Hour}, {2, time.Hour}} {
		c := newSkewedClock(tc.rate, tc.offset)
		realStart := time.Now()
		t0 := c.Now()
		if strings.Contains(t0.String(), "m=") {
			t.Fatalf("rate %v: reading %v carries a monotonic reading", tc.rate, t0)
		}
		if skew := t0.Sub(realStart.Round(0)) - tc.offset; skew < -time.Second || skew > time.Second {
			t.Fatalf("rate %v: reads %v off time.Now, want about %v", tc.rate, t0.Sub(realStart.Round(0)), tc.offset)
		}
		timer := c.NewTimer(d)
		<-timer.C()
		measured := c.Since(t0)
		elapsed := time.Since(realStart)
		if elapsed < c.toReal(d) {
			t.Fatalf("rate %v: a %v timer fired after %v of real time, before %v", tc.rate, d, elapsed, c.toReal(d))
		}
		if measured < d-time.Microsecond {
			t.Fatalf("rate %v: clock measured %v across a %v timer", tc.rate, measured, d)
		}
		if measured > c.toLocal(elapsed)+time.Microsecond {
			t.Fatalf("rate %v: clock measured %v within %v of real time", tc.rate, measured, elapsed)
		}
		if timer.Reset(d) || !timer.Stop() {
			t.Fatalf("rate %v: Reset of a fired timer or Stop of a pending one misreported", tc.rate)
		}
	}
}
