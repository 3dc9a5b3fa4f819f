package gateway_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// TestZlibStreamOverTLS: wss, as Discord serves it, with the HTTP client of a
// private CA: the dial wraps the socket under TLS (the transport is an
// *http.Transport), and a burst of dispatches larger than a TLS record and
// the websocket's buffer arrives whole and in order through the read-ahead
// and the batched dispatcher wake-ups.
func TestZlibStreamOverTLS(t *testing.T) {
	const events = 500
	s := newFake(t)
	ts := httptest.NewTLSServer(s.Handler())
	t.Cleanup(ts.Close)
	rec := &recorder{}
	g := newShard(t, s, rec, gateway.WithURL("wss://"+strings.TrimPrefix(ts.URL, "https://")+"/gateway"),
		gateway.WithHTTPClient(ts.Client()), gateway.WithCompression(gateway.CompressionZlibStream))
	open(t, g)
	for i := range events {
		s.Dispatch("MESSAGE_CREATE", 0, paddedEvent(i))
	}
	eventually(t, "every event", func() bool { return rec.count("MESSAGE_CREATE") == events })
	checkSequence(t, rec.snapshot())
}
