package sharding

import (
	"strings"
	"testing"
)

// FuzzParseGatewayBot: any answer of /gateway/bot is read without a panic,
// an accepted one has a usable count and max_concurrency and no negative
// budget field, and no error holds
// the token, even when the body echoes it.
func FuzzParseGatewayBot(f *testing.F) {
	const token = "fuzz-secret-token-0123456789"
	f.Add(200, []byte(`{"url":"wss://x","shards":4,"session_start_limit":{"total":1000,"remaining":990,"reset_after":1,"max_concurrency":2}}`))
	f.Add(200, []byte(`{"shards":0}`))
	f.Add(200, []byte(`{"shards":"`+token+`"}`))
	f.Add(401, []byte(`{"message":"401: Unauthorized","code":0}`))
	f.Add(429, []byte(`{"message":"rate limited","retry_after":0.5,"global":false}`))
	f.Add(500, []byte(strings.Repeat("x", 190)+token))
	f.Add(502, []byte("\xff\xfe"+token))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		gb, err := parseGatewayBot(status, body, token)
		if err != nil {
			// Neither the token nor a piece of it cut from an echoed token.
			rest := strings.ReplaceAll(string(body), token, "")
			if strings.Contains(err.Error(), token) ||
				(strings.Contains(err.Error(), token[:12]) && !strings.Contains(rest, token[:12])) {
				t.Fatalf("error holds the token: %q", err)
			}
			return
		}
		sl := gb.SessionStartLimit
		if status != 200 || gb.Shards < 1 || sl.MaxConcurrency < 1 || sl.Total < 0 || sl.Remaining < 0 || sl.ResetAfter < 0 {
			t.Fatalf("accepted status %d with %+v", status, gb)
		}
	})
}
