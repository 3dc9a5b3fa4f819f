package faultproxy

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Fault is what the proxy does to traffic.
type Fault int

const (
	// Pass forwards everything at once.
	Pass Fault = iota
	// Latency forwards every chunk after a delay (SetLatency).
	Latency
	// Blackhole holds every byte, in both directions, until the fault
	// changes: the connections stay open and silent, as in a partition.
	// New connections are accepted and held too.
	Blackhole
	// Refuse resets every new connection at once; open ones still pass.
	Refuse
)

func (f Fault) String() string {
	switch f {
	case Pass:
		return "pass"
	case Latency:
		return "latency"
	case Blackhole:
		return "blackhole"
	case Refuse:
		return "refuse"
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// faultState is one setting; changed closes when it is replaced.
type faultState struct {
	fault   Fault
	latency time.Duration
	changed chan struct{}
}

// Proxy is a fault-injecting TCP proxy. Its methods are safe for concurrent use.
type Proxy struct {
	cfg  Config
	ln   net.Listener
	ctx  context.Context // ended by Close
	stop context.CancelFunc

	state atomic.Pointer[faultState]
	setMu sync.Mutex // serializes setters

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup

	drops atomic.Pointer[dropRule] // armed by DropReplies; nil: none

	accepted, resets, dropped atomic.Int64
}

// New starts a proxy to upstream.
func New(upstream string, opts ...Option) (*Proxy, error) {
	cfg := DefaultConfig()
	cfg.Upstream = upstream
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("faultproxy listen %s: %w", cfg.ListenAddr, err)
	}
	p := &Proxy{cfg: cfg, ln: ln, conns: map[net.Conn]struct{}{}}
	p.ctx, p.stop = context.WithCancel(context.Background())
	p.state.Store(&faultState{fault: Pass, changed: make(chan struct{})})
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listening address (host:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Fault reports the current fault and latency.
func (p *Proxy) Fault() (Fault, time.Duration) {
	s := p.state.Load()
	return s.fault, s.latency
}

// Set applies fault (with latency d, used by Latency only) to every
// connection from now on; bytes held by a black hole are released in order.
func (p *Proxy) Set(fault Fault, d time.Duration) {
	p.setMu.Lock()
	defer p.setMu.Unlock()
	old := p.state.Swap(&faultState{fault: fault, latency: d, changed: make(chan struct{})})
	close(old.changed)
}

// SetLatency delays every chunk by d.
func (p *Proxy) SetLatency(d time.Duration) { p.Set(Latency, d) }

// Blackhole holds all traffic until Heal (or another fault).
func (p *Proxy) Blackhole() { p.Set(Blackhole, 0) }

// Refuse resets new connections until Heal.
func (p *Proxy) Refuse() { p.Set(Refuse, 0) }

// Heal returns to plain forwarding; reply drops still armed are cancelled.
func (p *Proxy) Heal() {
	p.drops.Store(nil)
	p.Set(Pass, 0)
}

// Reset closes every open connection with an RST (SO_LINGER 0); new ones
// are accepted as usual.
func (p *Proxy) Reset() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for c := range p.conns {
		rst(c)
		n++
	}
	p.resets.Add(int64(n))
	return n
}

// Stats reports how many connections were accepted and reset so far.
func (p *Proxy) Stats() (accepted, resets int64) { return p.accepted.Load(), p.resets.Load() }

// Close stops the listener, resets every connection and waits for the
// proxy's goroutines. It is idempotent.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.stop()
	p.mu.Unlock()
	err := p.ln.Close()
	p.Reset()
	p.wg.Wait()
	return err
}

func rst(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// track registers c; false when the proxy is closed (c is then closed).
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		if p.state.Load().fault == Refuse {
			p.resets.Add(1)
			rst(down)
			continue
		}
		if !p.track(down) {
			return
		}
		p.wg.Add(1)
		go p.serve(down)
	}
}

// serve dials upstream for down and pipes both directions until either ends.
func (p *Proxy) serve(down net.Conn) {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.DialTimeout)
	var d net.Dialer
	up, err := d.DialContext(ctx, "tcp", p.cfg.Upstream)
	cancel()
	if err != nil {
		rst(down)
		p.untrack(down)
		return
	}
	if !p.track(up) {
		p.untrack(down)
		return
	}
	var l link
	var pipes sync.WaitGroup
	pipes.Go(func() { p.pipe(down, up, false, &l) })
	pipes.Go(func() { p.pipe(up, down, true, &l) })
	pipes.Wait()
}

// pipe copies src to dst, applying the current fault to every chunk; toClient
// is the upstream-to-client direction. When either side fails, both are
// closed, which ends the other direction too.
func (p *Proxy) pipe(src, dst net.Conn, toClient bool, l *link) {
	defer func() {
		p.untrack(src)
		p.untrack(dst)
	}()
	buf := make([]byte, p.cfg.BufferSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !toClient {
				p.markRequest(l, buf[:n]) // before the upstream can see it, so before its reply
			}
			if !p.hold() {
				return
			}
			if toClient && p.cutReply(l) {
				rst(dst)
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// hold applies the current fault to one chunk: waits out a black hole or the
// latency. It reports false when the proxy closed meanwhile.
func (p *Proxy) hold() bool {
	for {
		s := p.state.Load()
		switch s.fault {
		case Blackhole:
			select {
			case <-s.changed:
				continue
			case <-p.ctx.Done():
				return false
			}
		case Latency:
			t := time.NewTimer(s.latency) // the injected delay itself
			select {
			case <-t.C:
			case <-p.ctx.Done():
				t.Stop()
				return false
			}
		}
		return true
	}
}
