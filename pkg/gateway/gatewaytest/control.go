package gatewaytest

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"

	"github.com/disgoorg/snowflake/v2"
)

// maxControlBody bounds a control request's body.
const maxControlBody = 1 << 20

// controlRoutes mounts the /_fake/ control API (documented in doc.go).
func (s *Server) controlRoutes(mux *http.ServeMux) {
	s.recordRoutes(mux)
	s.chaosRoutes(mux)
	s.worldRoutes(mux)
}

// recordRoutes serves the records (GET).
func (s *Server) recordRoutes(mux *http.ServeMux) {
	get := func(path string, f func(r *http.Request) (any, int)) {
		mux.HandleFunc("GET /_fake/"+path, func(w http.ResponseWriter, r *http.Request) {
			v, status := f(r)
			writeJSON(w, status, v)
		})
	}
	get("stats", func(*http.Request) (any, int) { return s.Stats(), http.StatusOK })
	get("identifies", func(*http.Request) (any, int) { return nonNil(s.Identifies()), http.StatusOK })
	get("resumes", func(*http.Request) (any, int) { return nonNil(s.Resumes()), http.StatusOK })
	get("commands", func(*http.Request) (any, int) { return nonNil(s.Commands()), http.StatusOK })
	get("closes", func(*http.Request) (any, int) { return nonNil(s.Closes()), http.StatusOK })
	get("duplicates", func(*http.Request) (any, int) { return nonNil(s.Duplicates()), http.StatusOK })
	get("sessions", func(*http.Request) (any, int) { return nonNil(s.Sessions()), http.StatusOK })
	get("guilds", func(*http.Request) (any, int) { return nonNil(s.GuildIDs()), http.StatusOK })
	get("events", func(r *http.Request) (any, int) {
		id := r.URL.Query().Get("session")
		ev := s.SentEvents(id)
		if ev == nil {
			return errBody("unknown session"), http.StatusNotFound
		}
		if r.URL.Query().Get("data") != "true" {
			return ev, http.StatusOK
		}
		withData := make([]sentEventData, len(ev))
		for i, e := range ev {
			withData[i] = sentEventData{SentEvent: e, D: e.Data}
		}
		return withData, http.StatusOK
	})
}

// chaosRoutes serves the controls (POST).
func (s *Server) chaosRoutes(mux *http.ServeMux) {
	post := controlPost(mux)
	hit := func(n int) (any, int) { return map[string]int{"hit": n}, http.StatusOK }
	post("reconnect", func(_ *http.Request, sh int) (any, int) { return hit(s.SendReconnect(sh)) })
	post("drop", func(_ *http.Request, sh int) (any, int) { return hit(s.DropConnections(sh)) })
	post("request-heartbeat", func(_ *http.Request, sh int) (any, int) { return hit(s.RequestHeartbeat(sh)) })
	post("invalidate", func(r *http.Request, sh int) (any, int) {
		return hit(s.InvalidateSession(sh, r.URL.Query().Get("resumable") == "true"))
	})
	post("close", func(r *http.Request, sh int) (any, int) {
		code, err := strconv.Atoi(r.URL.Query().Get("code"))
		if err != nil || code < 1000 || code > 4999 {
			return errBody("code: want a close code in 1000-4999"), http.StatusBadRequest
		}
		return hit(s.CloseConnections(sh, code, r.URL.Query().Get("reason")))
	})
	post("raw", func(r *http.Request, sh int) (any, int) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxControlBody))
		if err != nil {
			return errBody("body: " + err.Error()), http.StatusBadRequest
		}
		return hit(s.SendRaw(sh, body, r.URL.Query().Get("binary") == "true"))
	})
	post("dispatch", s.controlDispatch)
	post("add-guilds", s.controlAddGuilds)
	s.settingRoutes(post)
}

// settingRoutes serves the switches (POST).
func (s *Server) settingRoutes(post func(string, func(*http.Request, int) (any, int))) {
	post("ack-heartbeats", func(r *http.Request, _ int) (any, int) {
		ack, err := strconv.ParseBool(r.URL.Query().Get("ack"))
		if err != nil {
			return errBody("ack: want true or false"), http.StatusBadRequest
		}
		s.SetAckHeartbeats(ack)
		return map[string]bool{"ack": ack}, http.StatusOK
	})
	post("withhold-ready", func(r *http.Request, _ int) (any, int) {
		on, err := strconv.ParseBool(r.URL.Query().Get("on"))
		if err != nil {
			return errBody("on: want true or false"), http.StatusBadRequest
		}
		s.SetWithholdReady(on)
		return map[string]bool{"on": on}, http.StatusOK
	})
	post("split-frames", func(r *http.Request, _ int) (any, int) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil {
			return errBody("n: want an integer"), http.StatusBadRequest
		}
		s.SetSplitFrames(n)
		return map[string]int{"n": n}, http.StatusOK
	})
	post("events-per-second", rateControl(s.SetEventsPerSecond, s.EventsPerSecond))
	post("restore-token", func(*http.Request, int) (any, int) {
		s.RestoreToken()
		return map[string]bool{"ok": true}, http.StatusOK
	})
}

// rateControl serves a steady load's ?rate=R: it sets the rate and answers
// {"rate": the rate now}.
func rateControl(set func(float64), get func() float64) func(*http.Request, int) (any, int) {
	return func(r *http.Request, _ int) (any, int) {
		rate, err := strconv.ParseFloat(r.URL.Query().Get("rate"), 64)
		if err != nil || !(rate >= 0) {
			return errBody("rate: want a number >= 0"), http.StatusBadRequest
		}
		set(rate)
		return map[string]float64{"rate": get()}, http.StatusOK
	}
}

// controlPost returns a registrar of POST /_fake/ handlers that parse the
// shard=N parameter (default -1: every connection).
func controlPost(mux *http.ServeMux) func(string, func(*http.Request, int) (any, int)) {
	return func(path string, f func(r *http.Request, shard int) (any, int)) {
		mux.HandleFunc("POST /_fake/"+path, func(w http.ResponseWriter, r *http.Request) {
			shard := -1
			if v := r.URL.Query().Get("shard"); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil || n < -1 {
					writeJSON(w, http.StatusBadRequest, errBody("shard: want an integer >= -1"))
					return
				}
				shard = n
			}
			v, status := f(r, shard)
			writeJSON(w, status, v)
		})
	}
}

// dispatchRequest is POST /_fake/dispatch's body.
type dispatchRequest struct {
	Type    string          `json:"t"`
	GuildID snowflake.ID    `json:"guild_id"`
	Data    json.RawMessage `json:"d"`
}

func (s *Server) controlDispatch(r *http.Request, _ int) (any, int) {
	var req dispatchRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxControlBody))
	if err := dec.Decode(&req); err != nil {
		return errBody("body: want {\"t\", \"guild_id\", \"d\"}: " + err.Error()), http.StatusBadRequest
	}
	if req.Type == "" {
		return errBody("t: required"), http.StatusBadRequest
	}
	if len(req.Data) == 0 {
		req.Data = json.RawMessage("null")
	}
	return map[string]int{"sent": s.Dispatch(req.Type, req.GuildID, req.Data)}, http.StatusOK
}

// controlAddGuilds is POST /_fake/add-guilds?shard=N&count=C&n=K.
func (s *Server) controlAddGuilds(r *http.Request, shard int) (any, int) {
	count, err := strconv.Atoi(r.URL.Query().Get("count"))
	if err != nil {
		return errBody("count: want an integer"), http.StatusBadRequest
	}
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil {
		return errBody("n: want an integer"), http.StatusBadRequest
	}
	on, err := s.AddGuilds(shard, count, n)
	if err != nil {
		return errBody(err.Error()), http.StatusBadRequest
	}
	return map[string]int{"added": n, "guilds_on_shard": on}, http.StatusOK
}

// sentEventData is a SentEvent with its d, for /_fake/events?data=true.
type sentEventData struct {
	SentEvent
	D json.RawMessage `json:"d"`
}

func errBody(msg string) map[string]string { return map[string]string{"error": msg} }

// nonNil makes empty lists encode as [] rather than null.
func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}
