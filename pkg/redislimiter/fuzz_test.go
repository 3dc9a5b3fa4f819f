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
