package redislimiter

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// event is one notification: the head of bucket's queue may try in delay µs.
type event struct {
	bucket int
	delay  int64
	head   string
}

// parseEvent decodes "<bucket>:<delay µs>:<head ticket>". The channel is shared
// with whoever can PUBLISH on the Redis, so the payload is untrusted.
func parseEvent(payload string) (event, error) {
	parts := strings.SplitN(payload, ":", 3)
	if len(parts) != 3 {
		return event{}, fmt.Errorf("%w: want 3 fields", errBadEvent)
	}
	b, err := strconv.Atoi(parts[0])
	if err != nil || b < 0 {
		return event{}, fmt.Errorf("%w: bucket %q", errBadEvent, parts[0])
	}
	d, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || d < 0 {
		return event{}, fmt.Errorf("%w: delay %q", errBadEvent, parts[1])
	}
	if parts[2] == "" {
		return event{}, fmt.Errorf("%w: empty head", errBadEvent)
	}
	return event{bucket: b, delay: d, head: parts[2]}, nil
}

// healthInterval is how long the listener waits for a message before it pings
// the subscription connection, so a dead connection is replaced.
const healthInterval = 5 * time.Second

// listen receives notifications until Close and hands each to the local waiter
// it names. go-redis reconnects and resubscribes by itself; messages sent while
// disconnected are lost, which the waiters' timed fallback covers.
func (l *Limiter) listen() {
	defer l.bg.Done()
	backoff := 10 * time.Millisecond
	for {
		msg, err := l.ps.ReceiveTimeout(l.stop, healthInterval)
		if l.stop.Err() != nil {
			return
		}
		if err != nil {
			var nerr net.Error
			if errors.As(err, &nerr) && nerr.Timeout() {
				_ = l.ps.Ping(l.stop) // a failure makes the next receive reconnect
				continue
			}
			l.log.Debug("notification listener", slog.Any("error", err))
			if !l.pause(backoff) {
				return
			}
			backoff = min(2*backoff, l.cfg.PollInterval)
			continue
		}
		backoff = 10 * time.Millisecond
		if m, ok := msg.(*redis.Message); ok {
			l.deliver(m.Payload)
		}
	}
}

// pause waits d or until Close; it reports false on Close.
func (l *Limiter) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.stop.Done():
		return false
	}
}

func (l *Limiter) deliver(payload string) {
	ev, err := parseEvent(payload)
	if err != nil {
		l.log.Debug("ignored notification", slog.Any("error", err))
		return
	}
	l.mu.Lock()
	w := l.waiters[ev.head]
	l.mu.Unlock()
	if w == nil {
		return
	}
	// Only this goroutine sends, so after the drain the send cannot block.
	select {
	case w.wake <- ev.delay:
	default:
		select {
		case <-w.wake:
		default:
		}
		w.wake <- ev.delay
	}
}
