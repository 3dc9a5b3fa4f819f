package gateway_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// TestZlibStreamIdleReleaseOverSocket: over a real socket to the fake, a
// zlib-stream shard that goes quiet releases its inflater (the read deadline
// behind it is not taken for a dead connection), and the events that come
// after, quoting the ones before (back-references into the released
// history while the fake keeps its compressor), arrive whole and in order.
// No reconnect hides a broken restore. The fake's heartbeat ACKs (every testHeartbeat) release and restore it in
// between as well.
func TestZlibStreamIdleReleaseOverSocket(t *testing.T) {
	gateway.SetZlibIdleAfter(t, 20*time.Millisecond)
	s := newFake(t)
	rec := &recorder{}
	g := newShard(t, s, rec, gateway.WithCompression(gateway.CompressionZlibStream))
	open(t, g)
	var sent []string
	for round := range 6 {
		before := gateway.ZlibIdleReleases()
		eventually(t, "an idle release", func() bool { return gateway.ZlibIdleReleases() > before })
		for i := range 20 {
			quote := "first"
			if len(sent) > 0 {
				quote = sent[(i*7)%len(sent)]
			}
			d := fmt.Sprintf(`{"round":%d,"i":%d,"quote":%q}`, round, i, quote[:min(len(quote), 150+round*60)])
			sent = append(sent, d)
			s.Dispatch("MESSAGE_CREATE", 0, json.RawMessage(d))
		}
		eventually(t, "the round's events", func() bool { return rec.count("MESSAGE_CREATE") == len(sent) })
	}
	got := 0
	for _, e := range rec.snapshot() {
		if e.t != "MESSAGE_CREATE" {
			continue
		}
		if !bytes.Equal(e.data, []byte(sent[got])) {
			t.Fatalf("event %d: got %s, want %s", got, e.data, sent[got])
		}
		got++
	}
	checkSequence(t, rec.snapshot())
	if st := s.Stats(); st.Identifies != 1 || st.Resumes != 0 {
		t.Fatalf("%d IDENTIFYs and %d RESUMEs: a restored stream must go on, not reconnect", st.Identifies, st.Resumes)
	}
}
