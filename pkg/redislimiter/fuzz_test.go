package redislimiter

import (
	"strconv"
	"testing"
)

// FuzzParseEvent: notifications come from a channel anyone with access to the
// Redis can PUBLISH on; parseEvent must never panic and must round-trip what
// the scripts send.
func FuzzParseEvent(f *testing.F) {
	for _, s := range []string{"0:0:abc", "15:110000:0123456789abcdef", "", "::", "-1:5:x", "1:-5:x", "1:2:", "a:b:c:d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		ev, err := parseEvent(payload)
		if err != nil {
			return
		}
		if ev.bucket < 0 || ev.delay < 0 || ev.head == "" {
			t.Fatalf("accepted a bad event %q: %+v", payload, ev)
		}
		again, err := parseEvent(strconv.Itoa(ev.bucket) + ":" + strconv.FormatInt(ev.delay, 10) + ":" + ev.head)
		if err != nil || again != ev {
			t.Fatalf("round trip of %+v: %+v, %v", ev, again, err)
		}
	})
}

// FuzzParseGatewayBot: the /gateway/bot body is untrusted input.
func FuzzParseGatewayBot(f *testing.F) {
	f.Add([]byte(`{"url":"wss://g","shards":2,"session_start_limit":{"total":1000,"remaining":5,"reset_after":10,"max_concurrency":1}}`))
	f.Add([]byte(`{"shards":-1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		g, err := ParseGatewayBot(body)
		if err != nil {
			return
		}
		if g.Shards < 1 || g.SessionStartLimit.MaxConcurrency < 1 || g.SessionStartLimit.Remaining < 0 {
			t.Fatalf("accepted %s: %+v", body, g)
		}
	})
}
