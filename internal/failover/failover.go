package failover

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// refreshEvery bounds how often a dial asks every sentinel again.
const refreshEvery = 250 * time.Millisecond

// askTimeout bounds one question to one sentinel when the options set no
// read timeout; a sentinel that does not answer is left out of that round.
const askTimeout = time.Second

// Client is a go-redis failover client whose dials follow the newest master
// any sentinel names. Close stops the watch too.
type Client struct {
	*redis.Client
	w *watch
}

// NewClient returns the failover client for opt, watching every address in
// opt.SentinelAddrs; log receives one line per switch it acts on.
func NewClient(opt *redis.FailoverOptions, log *slog.Logger) *Client {
	return newClient(opt, opt.SentinelAddrs, log)
}

// newClient lets a test give go-redis fewer sentinels than the watch.
func newClient(opt *redis.FailoverOptions, watchAddrs []string, log *slog.Logger) *Client {
	w := newWatch(opt, watchAddrs, log)
	c := &Client{Client: redis.NewFailoverClient(opt), w: w}
	// A hook, not FailoverOptions.Dialer: go-redis dials the sentinels
	// with that dialer too, and the hook sees the data connections only.
	c.AddHook(w)
	return c
}

// Close closes the client, then the sentinel subscriptions.
func (c *Client) Close() error {
	err := c.Client.Close()
	c.w.close()
	return err
}

// Master is the master the watch follows and the config epoch it was named
// in; "" before any sentinel answered.
func (c *Client) Master() (addr string, epoch int64) {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	return c.w.master, c.w.epoch
}

// watch is the view of the master shared by the dialer and the per-sentinel
// subscriptions.
type watch struct {
	name      string
	log       *slog.Logger
	base      func(ctx context.Context, network, addr string) (net.Conn, error)
	sentinels []*redis.SentinelClient
	addrs     []string // of sentinels, in the same order
	timeout   time.Duration
	stop      context.CancelFunc
	wg        sync.WaitGroup

	mu          sync.Mutex
	master      string // "" until a sentinel answered
	epoch       int64
	conns       map[*conn]struct{}
	lastRefresh time.Time
}

func newWatch(opt *redis.FailoverOptions, addrs []string, log *slog.Logger) *watch {
	w := &watch{
		name:    opt.MasterName,
		addrs:   addrs,
		log:     log,
		base:    baseDialer(opt),
		timeout: askTimeout,
		conns:   map[*conn]struct{}{},
	}
	if opt.ReadTimeout > 0 {
		w.timeout = opt.ReadTimeout
	}
	ctx, stop := context.WithCancel(context.Background())
	w.stop = stop
	for _, addr := range addrs {
		sc := redis.NewSentinelClient(&redis.Options{
			Addr:         addr,
			Username:     opt.SentinelUsername,
			Password:     opt.SentinelPassword,
			TLSConfig:    opt.TLSConfig,
			Dialer:       opt.Dialer,
			DialTimeout:  opt.DialTimeout,
			ReadTimeout:  opt.ReadTimeout,
			WriteTimeout: opt.WriteTimeout,
			MaxRetries:   -1,
			PoolSize:     2,
			// ask's deadline, not ReadTimeout alone, bounds a question to
			// a sentinel that stopped answering.
			ContextTimeoutEnabled: true,
		})
		w.sentinels = append(w.sentinels, sc)
		w.wg.Add(1)
		go w.follow(ctx, sc, addr)
	}
	return w
}

// baseDialer dials a data server as go-redis's failover client would: the
// caller's dialer if it set one, else TCP, with TLS when configured.
func baseDialer(opt *redis.FailoverOptions) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if opt.Dialer != nil {
		return opt.Dialer
	}
	d := &net.Dialer{Timeout: opt.DialTimeout, KeepAlive: 5 * time.Minute}
	if opt.TLSConfig == nil {
		return d.DialContext
	}
	td := &tls.Dialer{NetDialer: d, Config: opt.TLSConfig}
	return td.DialContext
}

func (w *watch) close() {
	w.stop()
	for _, sc := range w.sentinels {
		_ = sc.Close()
	}
	w.wg.Wait()
}

// follow listens to one sentinel's +switch-master and asks it for the master
// whenever the subscription is (re)made and whenever it reports a switch of
// this master, so a report missed while disconnected is caught up.
func (w *watch) follow(ctx context.Context, sc *redis.SentinelClient, from string) {
	defer w.wg.Done()
	ps := sc.Subscribe(ctx, "+switch-master")
	defer ps.Close()
	ch := ps.ChannelWithSubscriptions()
	for {
		var msg any
		var ok bool
		select {
		case <-ctx.Done():
			return
		case msg, ok = <-ch:
			if !ok {
				return
			}
		}
		switch m := msg.(type) {
		case *redis.Subscription:
		case *redis.Message:
			if name, _, _ := strings.Cut(m.Payload, " "); name != w.name {
				continue
			}
		default:
			continue
		}
		if addr, epoch, err := w.ask(ctx, sc); err == nil {
			w.offer(addr, epoch, from)
		}
	}
}

// ask returns the master sc names and the config epoch of that naming.
func (w *watch) ask(ctx context.Context, sc *redis.SentinelClient) (string, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	m, err := sc.Master(ctx, w.name).Result()
	if err != nil {
		return "", 0, err
	}
	return parseMaster(m)
}

// parseMaster reads the address and config epoch from SENTINEL MASTER's
// reply. It refuses the reply of a sentinel that is leading a failover: that
// sentinel takes the new epoch when the replica reports its promotion and the
// new address only at +switch-master, so in between its reply pairs the new
// epoch with the old master. Any other sentinel changes both at once.
func parseMaster(m map[string]string) (string, int64, error) {
	ip, port := m["ip"], m["port"]
	if ip == "" || port == "" {
		return "", 0, errors.New("failover: SENTINEL MASTER reply has no ip or port")
	}
	epoch, err := strconv.ParseInt(m["config-epoch"], 10, 64)
	if err != nil {
		return "", 0, errors.New("failover: SENTINEL MASTER reply has no readable config-epoch")
	}
	if slices.Contains(strings.Split(m["flags"], ","), "failover_in_progress") {
		return "", 0, errors.New("failover: the sentinel is leading a failover; its address may be the old master's")
	}
	return net.JoinHostPort(ip, port), epoch, nil
}

// offer takes addr as the master if no sentinel answered yet or it was named
// in a newer epoch than the one followed, and then closes the connections to
// any other server. A sentinel that lags reports the same switch later, in
// the same epoch, and changes nothing.
func (w *watch) offer(addr string, epoch int64, from string) {
	w.mu.Lock()
	old := w.master
	if old != "" && epoch <= w.epoch {
		w.mu.Unlock()
		return
	}
	w.master, w.epoch = addr, epoch
	var stale []*conn
	if old != "" && old != addr {
		for c := range w.conns {
			if c.target != addr {
				stale = append(stale, c)
				delete(w.conns, c)
			}
		}
	}
	w.mu.Unlock()
	if old == "" || old == addr {
		return
	}
	for _, c := range stale {
		_ = c.Conn.Close()
	}
	if w.log != nil {
		w.log.Warn("sentinel reported a new master: leaving the old one", "master_name", w.name,
			"old", old, "new", addr, "config_epoch", epoch, "sentinel", from, "connections_closed", len(stale))
	}
}

// refresh asks every sentinel at once and offers each answer; sentinels that
// do not answer within the timeout are left out.
func (w *watch) refresh(ctx context.Context) {
	var wg sync.WaitGroup
	for i, sc := range w.sentinels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if addr, epoch, err := w.ask(ctx, sc); err == nil {
				w.offer(addr, epoch, w.addrs[i])
			}
		}()
	}
	wg.Wait()
}

// target is the master to dial: the one of the newest epoch known, "" while
// no sentinel answered the watch. Every sentinel is asked again first (at
// most every refreshEvery), so a watch that missed a report while its
// subscription was down catches up at the next dial.
func (w *watch) target(ctx context.Context) string {
	w.mu.Lock()
	due := time.Since(w.lastRefresh) >= refreshEvery
	if due {
		w.lastRefresh = time.Now()
	}
	w.mu.Unlock()
	if due {
		w.refresh(ctx)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.master
}

// DialHook replaces go-redis's dial of a data server, which asks go-redis's
// own sentinel (possibly one that lags, or hangs) for the master: it dials
// the watch's master instead, and falls back to go-redis's dial only while
// no sentinel answered the watch. Either way the connection is tracked, so
// that a switch can close it.
func (w *watch) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		target := w.target(ctx)
		var nc net.Conn
		var err error
		if target == "" {
			if nc, err = next(ctx, network, addr); err != nil {
				return nil, err
			}
			target = nc.RemoteAddr().String()
		} else if nc, err = w.base(ctx, network, target); err != nil {
			return nil, err
		}
		c := &conn{Conn: nc, w: w, target: target}
		w.mu.Lock()
		if w.master != "" && w.master != target {
			w.mu.Unlock()
			_ = nc.Close()
			return nil, errors.New("failover: the master changed while dialing " + target)
		}
		w.conns[c] = struct{}{}
		w.mu.Unlock()
		if sc, ok := nc.(syscall.Conn); ok {
			// go-redis checks an idle connection's health through its file
			// descriptor; keep that working so a closed one is dropped unused.
			return &sysConn{conn: c, sc: sc}, nil
		}
		return c, nil
	}
}

// ProcessHook leaves commands alone.
func (w *watch) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

// ProcessPipelineHook leaves pipelines alone.
func (w *watch) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// conn is a connection to a data server that the watch can close.
type conn struct {
	net.Conn
	w      *watch
	target string
}

func (c *conn) Close() error {
	c.w.mu.Lock()
	delete(c.w.conns, c)
	c.w.mu.Unlock()
	return c.Conn.Close()
}

// sysConn is a conn over a connection with a file descriptor.
type sysConn struct {
	*conn
	sc syscall.Conn
}

func (c *sysConn) SyscallConn() (syscall.RawConn, error) { return c.sc.SyscallConn() }
