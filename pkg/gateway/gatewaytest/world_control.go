package gatewaytest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
)

// worldRoutes serves the world: GET /_fake/state and the changes (POST
// /_fake/world/...; documented in doc.go).
func (s *Server) worldRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /_fake/state", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.State())
	})
	mux.HandleFunc("POST /_fake/world/{kind}", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxControlBody))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, errBody("body: "+err.Error()))
			return
		}
		ch, err := decodeChange(r.PathValue("kind"), body)
		if err == nil {
			var obj Object
			if obj, err = s.Change(ch); err == nil {
				writeJSON(w, http.StatusOK, map[string]any{"object": obj})
				return
			}
		}
		writeJSON(w, http.StatusBadRequest, errBody(err.Error()))
	})
	post := controlPost(mux)
	post("world/mutate", func(r *http.Request, _ int) (any, int) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 0 || n > maxWorldCount {
			return errBody("n: want an integer in 0..100000"), http.StatusBadRequest
		}
		seed, err := strconv.ParseUint(r.URL.Query().Get("seed"), 10, 64)
		if err != nil {
			return errBody("seed: want an unsigned integer"), http.StatusBadRequest
		}
		return map[string]int{"applied": s.Mutate(rand.New(rand.NewPCG(seed, seed)), n)}, http.StatusOK
	})
	post("world/mutations-per-second", rateControl(s.SetMutationsPerSecond, s.MutationsPerSecond))
}

// decodeChange decodes a change control's body (untrusted): one JSON
// object with the Change fields only, guild_id required.
func decodeChange(kind string, body []byte) (Change, error) {
	ch := Change{Kind: ChangeKind(kind)}
	if changers[ch.Kind] == nil {
		return Change{}, fmt.Errorf("unknown change %q: want one of %v", kind, ChangeKinds())
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ch); err != nil {
		return Change{}, fmt.Errorf("body: want {\"guild_id\", \"id\", \"channel_id\", \"user_id\", \"ids\", \"fields\"}: %w", err)
	}
	if dec.More() {
		return Change{}, errors.New("body: want one JSON object")
	}
	if ch.Guild == 0 {
		return Change{}, errors.New("guild_id: required")
	}
	return ch, nil
}
