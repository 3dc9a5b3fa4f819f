package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

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

// newHandler builds the HTTP API of a worker.
//
//	/healthz  200 while the process serves (also after a fatal 4004, so an
//	          orchestrator does not restart it into an identify loop)
//	/readyz   200 when every owned shard is READY and, in fleet mode, the lease
//	          session is alive; else 503 with the reason
//	/status   JSON: {"worker": this worker, "fleet": every worker read from Redis};
//	          a shard's "status" is its gateway's ("ready", "resuming"...),
//	          "opening", "budget_floor" (stopped at the identify budget's
//	          reserve floor until it resets: it reopens by itself) or "fatal"
//	          (a fatal close: stopped until the worker restarts); see
//	          worker.ShardStatus
//	/metrics  Prometheus
func newHandler(w *worker.Worker, client redis.UniversalClient, prefix string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(w.Registry(), promhttp.HandlerOpts{}))
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
			if st.Error != "" {
				reason = st.Error
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

// startHTTP listens on addr (nothing when empty) and serves in a goroutine
// that shutdown stops and waits for.
func startHTTP(addr string, w *worker.Worker, client redis.UniversalClient, prefix string, logger *slog.Logger) (*httpServer, error) {
	h := &httpServer{done: make(chan struct{}), log: logger}
	if addr == "" {
		close(h.done)
		return h, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("HTTP_ADDR: %w", err)
	}
	h.srv = &http.Server{Handler: newHandler(w, client, prefix), ReadHeaderTimeout: 5 * time.Second}
	logger.Info("http: serving /metrics /healthz /readyz /status", "addr", ln.Addr().String())
	go func() {
		defer close(h.done)
		if err := h.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http server", "err", err)
		}
	}()
	return h, nil
}

func (h *httpServer) shutdown() {
	if h.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = h.srv.Shutdown(ctx)
	}
	<-h.done
}
