package faultproxy

import "sync/atomic"

// Reply drops: the request reaches the upstream, the upstream acts on it,
// and its reply is lost, as when a connection breaks between a command and
// its answer (toxiproxy's reset_peer on the downstream). It is the fault a
// client's automatic retry meets: the retry runs the command a second time.
//
// A reply is the first bytes the upstream sends on a connection after a
// request (bytes from the client) was forwarded on it. Bytes the upstream
// sends unasked, such as pub/sub messages, are not replies and pass. When a
// reply is to be dropped, its bytes are discarded and the client connection
// is reset (RST); the upstream connection is closed. With pipelining, the
// one cut loses every reply still in flight on that connection.

// dropRule is one arming of DropReplies.
type dropRule struct {
	left  atomic.Int64 // replies still to cut
	match func(request []byte) bool
}

// take consumes one drop; false when none is left.
func (r *dropRule) take() bool {
	for {
		n := r.left.Load()
		if n <= 0 {
			return false
		}
		if r.left.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// link is the state the two directions of one proxied connection share.
type link struct {
	// awaiting is the rule whose reply is due: set when a matching request is
	// forwarded, cleared by the next bytes from the upstream.
	awaiting atomic.Pointer[dropRule]
}

// DropReplies cuts the next n replies, whichever connections they come on:
// each request reaches the upstream, and the client sees its connection reset
// instead of the answer. n <= 0 cancels drops still armed, as Heal does.
// Drops combine with the current Fault (a black-holed reply is cut when it
// is released). It replaces an earlier DropReplies or DropRepliesTo.
//
// Which replies are cut is deterministic when the client has one request in
// flight; keep other traffic off the proxy, or use DropRepliesTo.
func (p *Proxy) DropReplies(n int) { p.DropRepliesTo(n, nil) }

// DropRepliesTo is DropReplies for requests that match: a connection's reply
// is cut when some chunk of bytes the client sent since its last reply made
// match return true (nil matches everything). match sees each chunk as read
// (a whole small request on loopback; long requests may come in pieces), is
// called from the proxy's goroutines and must not keep the slice.
func (p *Proxy) DropRepliesTo(n int, match func(request []byte) bool) {
	if n <= 0 {
		p.drops.Store(nil)
		return
	}
	r := &dropRule{match: match}
	r.left.Store(int64(n))
	p.drops.Store(r)
}

// Dropped reports how many replies were cut so far.
func (p *Proxy) Dropped() int64 { return p.dropped.Load() }

// markRequest notes that the reply to chunk, a request from the client, is
// to be cut, when an armed rule matches it.
func (p *Proxy) markRequest(l *link, chunk []byte) {
	r := p.drops.Load()
	if r == nil || r.left.Load() <= 0 {
		return
	}
	if r.match == nil || r.match(chunk) {
		l.awaiting.Store(r)
	}
}

// cutReply reports whether bytes arriving from the upstream are a reply to
// cut (and counts it).
func (p *Proxy) cutReply(l *link) bool {
	r := l.awaiting.Swap(nil)
	if r == nil || p.drops.Load() != r || !r.take() {
		return false
	}
	p.dropped.Add(1)
	return true
}
