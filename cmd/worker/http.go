package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/worker"
)

// httpServer serves /metrics, /healthz, /readyz and /status.
type httpServer struct {
	srv  *http.Server
	done chan struct{}
	log  *slog.Logger
}

// served is what the HTTP API reads of a worker (a *worker.Worker, or the
// *member.Member that runs one).
type served interface {
	Gatherer() prometheus.Gatherer
	FatalError() error
	Status() worker.Status
}

// newHandler builds the HTTP API of a worker.
//
//	/healthz  200 while the process serves (also after a fatal 4004, so an
//	          orchestrator does not restart it into an identify loop)
//	/readyz   200 when every owned shard is READY and, in fleet mode, the lease
//	          session is alive and holds every shard assigned to this worker;
//	          else 503 with the reason (what it waits for, and how long)
//	/status   JSON: {"worker": this worker, "fleet": every worker read from Redis};
//	          a shard's "status" is its gateway's ("ready", "resuming"...),
//	          "opening", "budget_floor" (stopped at the identify budget's
//	          reserve floor until it resets: it reopens by itself) or "fatal"
//	          (a fatal close: stopped until the worker restarts); see
//	          worker.ShardStatus
//	/metrics  Prometheus
func newHandler(w served, client redis.UniversalClient, prefix string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(w.Gatherer(), promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		if err := w.FatalError(); err != nil {
			fmt.Fprintln(rw, "ok (serving, but stopped: "+err.Error()+")")
			return
		}
		fmt.Fprintln(rw, "ok")
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, _ *http.Request) {
		st := w.Status()
		if !st.Ready {
			rw.WriteHeader(http.StatusServiceUnavailable)
			reason := "not every shard is ready"
			switch {
			case st.Error != "":
				reason = st.Error
			case len(st.Waiting) > 0:
				reason = "waiting: " + st.Waiting[0].Reason
				if st.Waiting[0].LeftMS > 0 {
					reason += fmt.Sprintf(" (%v left)", time.Duration(st.Waiting[0].LeftMS)*time.Millisecond)
				}
			}
			fmt.Fprintln(rw, "not ready:", reason)
			return
		}
		fmt.Fprintln(rw, "ready")
	})
	mux.HandleFunc("GET /status", func(rw http.ResponseWriter, r *http.Request) {
		body := struct {
			Worker     worker.Status   `json:"worker"`
			Fleet      []worker.Status `json:"fleet,omitempty"`
			FleetError string          `json:"fleet_error,omitempty"`
		}{Worker: w.Status()}
		if client != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			fleet, err := worker.ReadFleet(ctx, client, prefix)
			cancel()
			body.Fleet = fleet
			if err != nil {
				body.FleetError = err.Error()
			}
		}
		rw.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(rw)
		enc.SetIndent("", "  ")
		_ = enc.Encode(body)
	})
	return mux
}

// Bounds of one HTTP connection's phases. A scrape or probe sends a short
// GET and reads a reply of at most a few hundred KiB (/metrics); /status
// waits up to 2 s for Redis.
const (
	httpReadHeaderTimeout = 5 * time.Second  // a new connection must send its headers within this
	httpReadTimeout       = 10 * time.Second // the whole request
	httpWriteTimeout      = 30 * time.Second // from the end of the headers to the end of the reply
)

// startHTTP listens on cfg.HTTPAddr (nothing when empty) and serves in a
// goroutine that shutdown stops and waits for.
func startHTTP(cfg *Config, handler http.Handler, logger *slog.Logger) (*httpServer, error) {
	h := &httpServer{done: make(chan struct{}), log: logger}
	if cfg.HTTPAddr == "" {
		close(h.done)
		return h, nil
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("HTTP_ADDR: %w", err)
	}
	h.srv = newHTTPServer(handler, cfg.HTTPIdleTimeout)
	logger.Info("http: serving /metrics /healthz /readyz /status", "addr", ln.Addr().String(),
		"max_conns", cfg.HTTPMaxConns, "idle_timeout", cfg.HTTPIdleTimeout)
	go func() {
		defer close(h.done)
		if err := h.srv.Serve(limitConns(ln, cfg.HTTPMaxConns)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http server", "err", err)
		}
	}()
	return h, nil
}

// newHTTPServer bounds every phase of a connection, so that no client, slow
// or idle, holds a file descriptor the shards need for longer than a timeout.
func newHTTPServer(handler http.Handler, idle time.Duration) *http.Server {
	return &http.Server{Handler: handler, ReadHeaderTimeout: httpReadHeaderTimeout, ReadTimeout: httpReadTimeout,
		WriteTimeout: httpWriteTimeout, IdleTimeout: idle}
}

// limitConns serves at most max connections at once. A connection beyond
// that is closed as soon as it is accepted (with a reset, so the worker keeps
// no TIME_WAIT for it) instead of waiting in Accept as
// golang.org/x/net/netutil.LimitListener would: the HTTP port then costs the
// worker at most max+1 descriptors, whatever a client does, and a flood ends
// up in the kernel's listen backlog, not in the worker's descriptor table.
func limitConns(ln net.Listener, max int) net.Listener {
	return &connLimiter{Listener: ln, slots: make(chan struct{}, max)}
}

type connLimiter struct {
	net.Listener
	slots chan struct{} // one element per open connection
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = c.Close()
		}
	}
}

// limitedConn gives its slot back on the first Close.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

func (h *httpServer) shutdown() {
	if h.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = h.srv.Shutdown(ctx)
	}
	<-h.done
}
