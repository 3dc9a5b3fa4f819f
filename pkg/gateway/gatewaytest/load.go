package gatewaytest

import (
	"encoding/json"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/disgoorg/snowflake/v2"
)

// loadTick is how often the load generator wakes up; each tick dispatches the
// events that fell due since the last one.
const loadTick = 10 * time.Millisecond

var typMessageCreate = jsonString("MESSAGE_CREATE")

// loadGen is a steady load (MESSAGE_CREATE, or world changes): one
// goroutine, owned by the Server (started by Listen, stopped and waited for
// by Close).
type loadGen struct {
	rate atomic.Uint64 // math.Float64bits(events per second)
	// emitting is held for each emit, and by setRate to store the rate: once
	// setRate returns, no emit at the old rate is under way, and a stop (0)
	// is seen before the next one, even in the middle of a tick's batch.
	emitting sync.Mutex
	changed  chan struct{}
	quit     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	n        uint64            // messages generated (generator goroutine only)
	pool     []json.RawMessage // generator only: payloads, reused once built
}

// loadPoolTarget is about how many distinct payloads the load cycles
// through; reusing them lets zlib-stream connections send each one compressed
// once (see deflateCache). With more guilds than loadPoolMax, every payload
// is new.
const (
	loadPoolTarget = 4096
	loadPoolMax    = 16384
)

func (l *loadGen) init(rate float64) {
	l.rate.Store(math.Float64bits(rate))
	l.changed = make(chan struct{}, 1)
	l.quit = make(chan struct{})
	l.done = make(chan struct{})
}

func (l *loadGen) stop() {
	l.stopOnce.Do(func() { close(l.quit) })
	<-l.done
}

// SetEventsPerSecond changes the steady MESSAGE_CREATE load (0 stops it).
// Negative or NaN rates count as 0. It returns once no dispatch at the old
// rate is under way (waiting, if one is held up by a slow connection, for
// that dispatch): after a stop, the sessions' sequences stay as they are.
func (s *Server) SetEventsPerSecond(rate float64) { s.load.setRate(rate) }

// setRate changes the generator's rate; negative, NaN or infinite rates count as 0.
func (l *loadGen) setRate(rate float64) {
	if !(rate > 0) || math.IsInf(rate, 1) {
		rate = 0
	}
	l.emitting.Lock()
	l.rate.Store(math.Float64bits(rate))
	l.emitting.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// EventsPerSecond is the current steady load.
func (s *Server) EventsPerSecond() float64 { return s.load.current() }

func (l *loadGen) current() float64 { return math.Float64frombits(l.rate.Load()) }

// run calls emit rate times a second until stop.
func (l *loadGen) run(s *Server, emit func()) {
	defer s.bgWG.Done()
	defer close(l.done)
	tick := time.NewTicker(loadTick)
	defer tick.Stop()
	last := time.Now()
	var due float64
	for {
		rate := math.Float64frombits(l.rate.Load())
		if rate == 0 {
			select {
			case <-l.quit:
				return
			case <-l.changed:
				last, due = time.Now(), 0
				continue
			}
		}
		select {
		case <-l.quit:
			return
		case <-l.changed:
			continue
		case now := <-tick.C:
			due += rate * now.Sub(last).Seconds()
			last = now
		}
		for ; due >= 1; due-- {
			select {
			case <-l.quit:
				return
			default:
			}
			if !l.emitOne(emit) {
				due = 0 // stopped during the batch: what fell due is dropped
				break
			}
		}
	}
}

// emitOne calls emit unless the rate is 0 by now; it reports whether it did.
func (l *loadGen) emitOne(emit func()) bool {
	l.emitting.Lock()
	defer l.emitting.Unlock()
	if l.current() == 0 {
		return false
	}
	emit()
	return true
}

// emit dispatches one MESSAGE_CREATE, spreading them round-robin over the
// guilds (guild-less DMs when the bot is in none).
func (l *loadGen) emit(s *Server) {
	n := l.n
	l.n++
	var g snowflake.ID // 0: guild-less
	if len(s.guilds) > 0 {
		g = s.guilds[n%uint64(len(s.guilds))]
	}
	size := poolSize(len(s.guilds))
	if size == 0 {
		s.dispatch(typMessageCreate, g, MessageCreateData(g, n))
		return
	}
	i := int(n % uint64(size))
	if i >= len(l.pool) {
		l.pool = append(l.pool, MessageCreateData(g, n))
	}
	s.dispatch(typMessageCreate, g, l.pool[i])
}

// poolSize is a multiple of the guild count near loadPoolTarget (so pool
// entry i always belongs to guild i % guilds), or 0 for no pool.
func poolSize(guilds int) int {
	switch {
	case guilds == 0:
		return loadPoolTarget
	case guilds > loadPoolMax:
		return 0
	}
	return guilds * ((loadPoolTarget + guilds - 1) / guilds)
}
