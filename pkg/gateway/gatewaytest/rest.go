package gatewaytest

import (
	"crypto/subtle"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// restLimiter is a fixed one-second window for /gateway/bot (Discord's
// global limit is 50 requests/s per bot). Guarded by Server.mu.
type restLimiter struct {
	windowStart time.Time
	count       int
}

// routes builds the fake's HTTP handler.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, v := range []string{"v9", "v10"} {
		mux.HandleFunc("/api/"+v+"/gateway", s.handleGatewayInfo)
		mux.HandleFunc("/api/"+v+"/gateway/bot", s.handleGatewayBot)
	}
	for _, p := range []string{gatewayPath, resumeGatewayPx} {
		path := p
		ws := func(w http.ResponseWriter, r *http.Request) { s.handleGateway(w, r, path) }
		mux.HandleFunc(p, ws)
		mux.HandleFunc(p+"/", ws)
	}
	s.controlRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "404: Not Found", "code": 0})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func methodNotAllowed(w http.ResponseWriter) {
	writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"message": "405: Method Not Allowed", "code": 0})
}

// handleGatewayInfo is GET /gateway: no auth.
func (s *Server) handleGatewayInfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"url": s.gwURL})
}

type sessionStartLimit struct {
	Total          int   `json:"total"`
	Remaining      int   `json:"remaining"`
	ResetAfter     int64 `json:"reset_after"` // milliseconds
	MaxConcurrency int   `json:"max_concurrency"`
}

type gatewayBot struct {
	URL               string            `json:"url"`
	Shards            int               `json:"shards"`
	SessionStartLimit sessionStartLimit `json:"session_start_limit"`
}

// handleGatewayBot is GET /gateway/bot: Authorization "Bot <token>" or 401;
// over RESTRateLimit requests in a second, 429.
func (s *Server) handleGatewayBot(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w)
		return
	}
	now := time.Now()
	s.mu.Lock()
	authed := s.restAuthOK(r.Header.Get("Authorization"))
	retry := s.restRateLimit(now)
	s.refreshSessionStarts(now)
	resp := gatewayBot{URL: s.gwURL, Shards: s.cfg.Shards, SessionStartLimit: sessionStartLimit{
		Total: s.cfg.SessionStartTotal, Remaining: s.remaining,
		ResetAfter: s.resetAfter(now).Milliseconds(), MaxConcurrency: s.cfg.MaxConcurrency,
	}}
	s.mu.Unlock()
	if !authed {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "401: Unauthorized", "code": 0})
		return
	}
	if retry > 0 {
		secs := retry.Seconds()
		h := w.Header()
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(secs))))
		h.Set("X-RateLimit-Global", "true")
		h.Set("X-RateLimit-Scope", "global")
		writeJSON(w, http.StatusTooManyRequests, map[string]any{
			"message": "You are being rate limited.", "retry_after": secs, "global": true})
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// restAuthOK checks "Bot <token>" in constant time. Needs s.mu.
func (s *Server) restAuthOK(h string) bool {
	tok, ok := strings.CutPrefix(h, "Bot ")
	return ok && !s.tokenRevoked && subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.Token)) == 1
}

// restRateLimit counts a request; it returns how long to wait, or 0. Needs s.mu.
func (s *Server) restRateLimit(now time.Time) time.Duration {
	if s.cfg.RESTRateLimit <= 0 {
		return 0
	}
	l := &s.rest
	if now.Sub(l.windowStart) >= time.Second {
		l.windowStart, l.count = now, 0
	}
	l.count++
	if l.count > s.cfg.RESTRateLimit {
		return time.Second - now.Sub(l.windowStart)
	}
	return 0
}

// resetAfter is session_start_limit.reset_after. Needs s.mu.
func (s *Server) resetAfter(now time.Time) time.Duration {
	if s.startWindow.IsZero() {
		return s.cfg.SessionStartResetAfter
	}
	return max(s.cfg.SessionStartResetAfter-now.Sub(s.startWindow), 0)
}
