package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/url"
	"testing"
)

// FuzzReadyFields: READY's d comes from the network. readyFields never
// panics, and what it returns agrees with encoding/json for well-formed
// objects without escapes in keys.
func FuzzReadyFields(f *testing.F) {
	for _, s := range []string{
		`{"session_id":"abc","resume_gateway_url":"wss://x"}`, `{"session_id":5}`, `[]`, `null`, `{"session_id":"\u00e9"}`,
		`{"v":10,"user":{"id":"1"},"guilds":[{"id":"2","unavailable":true}],"session_id":"s","resume_gateway_url":""}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, d []byte) {
		id, resumeURL := readyFields(d)
		var fields map[string]json.RawMessage
		if json.Unmarshal(d, &fields) != nil || bytes.Contains(d, []byte(`\`)) {
			return // not an object, or escapes (encoding/json unescapes keys; READY's keys have none)
		}
		check := func(key, got string) {
			var want string
			if v, ok := fields[key]; ok && json.Unmarshal(v, &want) == nil && want != got {
				t.Fatalf("%q: %s %q, encoding/json says %q", d, key, got, want)
			}
		}
		check("session_id", id)
		check("resume_gateway_url", resumeURL)
	})
}

// FuzzSanitizeState: a stored session (Redis, another process) is untrusted.
// sanitizeState never panics and returns a state New accepts: a non-negative
// seq and either no resume URL or one that dials as ws/wss.
func FuzzSanitizeState(f *testing.F) {
	f.Add("sess", 5, "wss://gateway.discord.gg")
	f.Add("", -1, "::not a url::")
	f.Add("\x00", 0, "http://x/")
	f.Add("s", 1<<62, "ws://[::1]:1/?v=9#frag")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, id string, seq int, resumeURL string) {
		st := sanitizeState(ShardState{SessionID: id, Sequence: seq, ResumeURL: resumeURL}, CompressionZlibStream, log)
		if st.Sequence < 0 {
			t.Fatalf("negative seq %d kept", st.Sequence)
		}
		if st.ResumeURL != "" {
			u, err := url.Parse(st.ResumeURL)
			if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") {
				t.Fatalf("unusable resume URL %q kept", st.ResumeURL)
			}
		}
		cfg := DefaultConfig()
		cfg.URL, cfg.State = "wss://gateway.discord.gg", st
		if err := cfg.validate("token"); err != nil {
			t.Fatalf("sanitized state %+v rejected: %v", st, err)
		}
	})
}
