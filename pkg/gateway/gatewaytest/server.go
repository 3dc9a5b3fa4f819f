package gatewaytest

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/disgoorg/snowflake/v2"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// Server is a running fake Discord (REST + gateway) on loopback.
//
// All methods are safe for concurrent use. Close stops it and waits for every
// goroutine it started.
type Server struct {
	cfg       Config
	log       *slog.Logger
	ln        net.Listener
	http      *http.Server
	handler   http.Handler
	baseURL   string         // http://host:port
	gwURL     string         // ws://host:port/gateway
	resumeURL string         // ws://host:port/resume-gateway
	guilds    []snowflake.ID // the initial guilds (Config.Guilds); never changes
	start     time.Time      // monotonic base of now()

	deflated      *deflateCache // zlib-stream dispatch bodies, compressed once
	ackHeartbeats atomic.Bool
	withholdReady atomic.Bool
	splitFrames   atomic.Int32
	nextConnID    atomic.Uint64
	load          loadGen
	mutations     loadGen // the steady world changes (MutationsPerSecond)

	mu           sync.Mutex // guards everything below, and every session and conn.sess
	closed       bool
	conns        map[*conn]struct{}
	sessions     map[string]*session
	sessionOrder []*session
	index        map[int]map[int][]*session // count -> shard -> sessions not ended
	liveByKey    map[[2]int]int
	duplicates   []DuplicateRecord
	openDup      map[[2]int]int    // (shard, count) -> index of its first open duplicate record
	lastIdentify map[int]time.Time // rate-limit key -> last IDENTIFY's arrival
	identifies   []IdentifyRecord
	resumes      []ResumeRecord
	commands     []CommandRecord // ops 3, 4, 8... received on a session (commands_record.go)
	closes       []CloseRecord
	closeIDs     []uint64 // closeIDs[i] names closes[i] for retractServerCloseLocked; 0 for a client's
	lastCloseID  uint64
	stats        Stats
	remaining    int
	startWindow  time.Time
	tokenRevoked bool
	rest         restLimiter
	rgmLast      map[snowflake.ID]time.Time
	added        []snowflake.ID // guilds the bot joined later (AddGuilds)
	nextGuildMs  uint64         // the next added guild's timestamp is at least this
	world        *State         // the ground truth of every guild built so far (world.go)
	worldMeta    map[snowflake.ID]*worldGuild
	left         map[snowflake.ID]bool // guilds the bot left (LeaveGuild): out of READY and GuildIDs

	wsWG   sync.WaitGroup // websocket handlers
	httpWG sync.WaitGroup // net/http connections (ConnState)
	bgWG   sync.WaitGroup // Serve and the load generator
}

// deflateCacheEntries bounds the shared cache of compressed dispatch bodies
// (about 150 bytes each for MESSAGE_CREATE).
const deflateCacheEntries = 16384

// NewServer starts a fake on 127.0.0.1 on a free port, like httptest.NewServer.
// Like httptest.NewServer, it panics if it cannot listen or if an option makes
// the config invalid (a bug in the test); use Listen to get an error instead.
func NewServer(opts ...Option) *Server {
	s, err := Listen("127.0.0.1:0", opts...)
	if err != nil {
		panic(fmt.Sprintf("gatewaytest.NewServer: %v", err))
	}
	return s
}

// Listen starts a fake on addr (for cmd/fakediscord). The config is validated
// here, once; the error names the bad field.
func Listen(addr string, opts ...Option) (*Server, error) {
	cfg := DefaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	s := newServer(cfg, ln)
	s.bgWG.Add(3)
	go func() {
		defer s.bgWG.Done()
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "err", err)
		}
	}()
	go s.load.run(s, func() { s.load.emit(s) })
	go s.mutations.run(s, s.mutateOne())
	return s, nil
}

func newServer(cfg Config, ln net.Listener) *Server {
	host := ln.Addr().String()
	s := &Server{
		cfg: cfg, log: cfg.Logger, ln: ln, start: time.Now(),
		baseURL: "http://" + host, gwURL: "ws://" + host + gatewayPath, resumeURL: "ws://" + host + resumeGatewayPx,
		guilds: makeGuilds(cfg.Guilds), conns: make(map[*conn]struct{}), sessions: make(map[string]*session),
		index: make(map[int]map[int][]*session), liveByKey: make(map[[2]int]int), openDup: make(map[[2]int]int),
		lastIdentify: make(map[int]time.Time), remaining: cfg.SessionStartTotal,
		rgmLast: make(map[snowflake.ID]time.Time), deflated: newDeflateCache(deflateCacheEntries),
		world: NewState(cfg.World.Messages), worldMeta: make(map[snowflake.ID]*worldGuild),
		left: make(map[snowflake.ID]bool),
	}
	s.ackHeartbeats.Store(true)
	s.load.init(cfg.EventsPerSecond)
	s.mutations.init(cfg.MutationsPerSecond)
	s.handler = s.routes()
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				s.httpWG.Add(1)
			case http.StateHijacked, http.StateClosed:
				s.httpWG.Done()
			}
		},
	}
	return s
}

// Handler is the fake's HTTP handler (REST under /api/v10, gateway, /_fake/ control API).
func (s *Server) Handler() http.Handler { return s.handler }

// URL is the base URL, http://127.0.0.1:port.
func (s *Server) URL() string { return s.baseURL }

// APIURL is the REST base, URL()+"/api/v10".
func (s *Server) APIURL() string { return s.baseURL + "/api/v10" }

// GatewayURL is the gateway URL, ws://127.0.0.1:port/gateway.
func (s *Server) GatewayURL() string { return s.gwURL }

// ResumeGatewayURL is the resume_gateway_url READY hands out (a distinct path).
func (s *Server) ResumeGatewayURL() string { return s.resumeURL }

// Token is the accepted bot token.
func (s *Server) Token() string { return s.cfg.Token }

// Config returns the validated configuration.
func (s *Server) Config() Config { return s.cfg }

// GuildIDs lists the bot's guilds: the initial ones, then those AddGuilds
// added, without those it left (the guild-leave change).
func (s *Server) GuildIDs() []snowflake.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := append(append([]snowflake.ID(nil), s.guilds...), s.added...)
	return slices.DeleteFunc(ids, func(g snowflake.ID) bool { return s.left[g] })
}

// Close drops every connection without a close frame (like a server crash,
// so sessions would stay resumable), closes the listener, and waits for every
// goroutine the server started. It is safe to call more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.serverCode.Store(-1)
		_ = c.ws.CloseNow()
	}
	s.load.stop() // after the drops: a Dispatch waiting on a full queue returns
	s.mutations.stop()
	_ = s.http.Close()
	s.bgWG.Wait()
	s.wsWG.Wait()
	s.httpWG.Wait()
}

// now is monotonic nanoseconds since the server started.
func (s *Server) now() int64 { return int64(time.Since(s.start)) }

// handleGateway upgrades a gateway or resume-gateway request and serves it on
// this (net/http's) goroutine until the connection ends.
func (s *Server) handleGateway(w http.ResponseWriter, r *http.Request, path string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	}
	s.wsWG.Add(1)
	s.mu.Unlock()
	defer s.wsWG.Done()
	hj := &corkHijacker{ResponseWriter: w, timeout: s.cfg.WriteTimeout}
	ws, err := websocket.Accept(hj, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		s.log.Debug("websocket accept", "err", err)
		return
	}
	if hj.conn == nil {
		_ = ws.CloseNow()
		return
	}
	ws.SetReadLimit(readLimit)
	c := newConn(s, ws, hj.conn, path)
	if perr := c.parseQuery(r.URL.Query()); perr != nil {
		s.recordServerClose(c, perr.Code, perr.Reason)
		_ = ws.Close(websocket.StatusCode(perr.Code), perr.Reason)
		_ = ws.CloseNow()
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ws.CloseNow()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	c.serve()
}

// connGone forgets c. Its session stays resumable unless the client closed
// with 1000/1001 (clientCode), which ends it.
func (s *Server) connGone(c *conn, clientCode int) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	shardID := -1
	if ss := c.sess; ss != nil {
		shardID = ss.shardID
		c.sess = nil
		if ss.conn == c {
			s.detach(ss, now)
			if clientCode == int(websocket.StatusNormalClosure) || clientCode == int(websocket.StatusGoingAway) {
				s.endSession(ss)
			}
		}
	}
	if id := c.retractClose.Load(); id != 0 {
		s.retractServerCloseLocked(id)
	}
	if c.serverCode.Load() == 0 { // else the fake's close is the record (one per connection)
		code := clientCode
		if code < 0 {
			code = int(websocket.StatusAbnormalClosure)
		}
		s.closes = append(s.closes, CloseRecord{Time: now, ShardID: shardID, Code: code, FromClient: true})
		s.closeIDs = append(s.closeIDs, 0)
	}
}

// recordServerClose records a close the fake sends (or, 1006, a TCP drop),
// and returns the record's id for retractServerCloseLocked.
func (s *Server) recordServerClose(c *conn, code int, reason string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	shardID := -1
	if c.sess != nil {
		shardID = c.sess.shardID
	}
	s.lastCloseID++
	s.closes = append(s.closes, CloseRecord{Time: time.Now(), ShardID: shardID, Code: code, Reason: reason})
	s.closeIDs = append(s.closeIDs, s.lastCloseID)
	if fatalCode(code) {
		s.stats.FatalCloses++
	}
	return s.lastCloseID
}

// retractServerCloseLocked removes the record id: the close it records was
// never sent, because the connection was already closing on the client's
// close. Needs s.mu.
func (s *Server) retractServerCloseLocked(id uint64) {
	i := slices.Index(s.closeIDs, id)
	if i < 0 {
		return
	}
	if fatalCode(s.closes[i].Code) {
		s.stats.FatalCloses--
	}
	s.closes = slices.Delete(s.closes, i, i+1)
	s.closeIDs = slices.Delete(s.closeIDs, i, i+1)
}

// fatalCode: the close codes after which a client must not reconnect
// (reference §5), kept here rather than taken from the client's table so the
// fake checks the client instead of agreeing with it.
func fatalCode(code int) bool {
	switch code {
	case gateway.CloseAuthenticationFailed, gateway.CloseInvalidShard, gateway.CloseShardingRequired,
		gateway.CloseInvalidAPIVersion, gateway.CloseInvalidIntents, gateway.CloseDisallowedIntents:
		return true
	}
	return false
}
