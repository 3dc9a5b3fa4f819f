package gatewaytest

import (
	"testing"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// FuzzClientPayload feeds arbitrary bytes through the fake's decoder of client
// payloads and every per-opcode decoder: they must never panic, and a payload
// is either accepted with a client opcode or rejected with 4001/4002.
func FuzzClientPayload(f *testing.F) {
	for _, seed := range []string{
		`{"op":1,"d":null}`, `{"op":1,"d":5}`, `{"op":2,"d":{"token":"t","intents":513,"properties":{},"shard":[0,1]}}`,
		`{"op":6,"d":{"token":"t","session_id":"x","seq":3}}`, `{"op":8,"d":{"guild_id":"1","query":"","limit":0}}`,
		`{"op":5}`, `{"op":99}`, `[]`, `null`, `{"op":"1"}`, `{"op":1e400}`, `{"op":2,"d":{"shard":[1,2,3]}}`,
		"{\"op\":2,\"d\":{\"token\":\"\xff\"}}", `{"op":2,"d":{"intents":-9223372036854775808,"properties":{}}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		frame, perr := decodeClientPayload(b)
		if perr != nil {
			if perr.Code != gateway.CloseDecodeError && perr.Code != gateway.CloseUnknownOpcode {
				t.Fatalf("envelope rejected with %d", perr.Code)
			}
			return
		}
		if !clientOpcode(frame.Op) {
			t.Fatalf("accepted op %d", frame.Op)
		}
		if id, perr := decodeIdentify(frame.D); perr == nil {
			if id.Intents == nil || (id.shardSent && len(id.Shard) != 2) {
				t.Fatalf("identify accepted without intents or with a bad shard: %+v", id)
			}
		}
		if rd, perr := decodeResume(frame.D); perr == nil && (rd.Seq == nil || rd.SessionID == "") {
			t.Fatalf("resume accepted without seq or session_id: %+v", rd)
		}
		_ = checkHeartbeatData(frame.D)
	})
}
