package lease

import (
	"testing"
)

// FuzzParseReplies: script replies come from Redis, which the fleet does not
// fully trust (another version, a corrupted key); parsing must never panic,
// and an accepted claim always has a token.
func FuzzParseReplies(f *testing.F) {
	f.Add("ok", "1732700000000000", "sess", "42", "wss://x", int64(5))
	f.Add("held", "worker-1", "", "", "", int64(0))
	f.Add("grace", "1500", "", "", "", int64(-3))
	f.Add("ok", "-1", "", "x", "", int64(1))
	f.Fuzz(func(t *testing.T, status, a, b, c, d string, n int64) {
		r, err := parseRawClaim([]any{status, a, b, c, d})
		if err == nil && r.status == "ok" && r.token == 0 {
			t.Fatalf("accepted claim %q without a token: %+v", a, r)
		}
		_, _ = parseRawClaim([]any{status})
		_, _ = parseRawClaim(nil)
		_, _ = parseRawClaim(status)
		_, _ = parseView([]any{n, a, []any{b, c}, []any{d, nil}})
		_, _ = parseView([]any{a, n, b, c})
		_, _ = parseView([]any{status})
	})
}
