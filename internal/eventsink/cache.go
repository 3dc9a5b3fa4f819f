package eventsink

import (
	"github.com/shardfleet/shardfleet/internal/cache"
)

// The state cache (internal/cache, issue 11): the commit script applies each
// event's cache changes when, and only when, it commits the event, so the
// cache is exactly as consistent as the stream: a replay or a retry changes
// nothing twice, a fenced-off owner changes nothing, and a reader that has
// seen an entry sees a cache at least as new.

// WithCache makes the sink keep the state cache cfg describes (the zero
// Config, the default, keeps nothing).
func WithCache(cfg cache.Config) Option { return func(c *Config) { c.Cache = cfg } }

// prepare computes ev's cache changes once: Writer.Add does it on the
// shard's event goroutine, so that parsing overlaps the Writer's commits.
func (s *Sink) prepare(ev *Event) {
	if !ev.prepared {
		ev.cache, ev.prepared = s.cfg.Cache.Changes(ev.Type, ev.Data), true
	}
}

// size is what ev holds in memory and sends to Redis: its data and its cache
// changes (about as large again for a dispatch the cache keeps), so that the
// backlog bounds and MaxBatchBytes count both.
func (ev Event) size() int {
	n := len(ev.Data)
	for _, c := range ev.cache {
		n += len(c)
	}
	return n
}

// appendEvent appends ev's arguments of the commit script: seq, type, data,
// then the count and the cells of its cache changes.
func (s *Sink) appendEvent(args []any, ev Event) []any {
	s.prepare(&ev)
	data := []byte(ev.Data)
	if data == nil {
		data = []byte("null")
	}
	args = append(args, ev.Seq, ev.Type, data, len(ev.cache))
	for _, c := range ev.cache {
		args = append(args, c)
	}
	return args
}
