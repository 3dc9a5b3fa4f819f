package gatewaytest

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestCommandsRecorded: every command a session sends is recorded (op, shard,
// session, payload) in order, by Commands and GET /_fake/commands, and op 8
// is answered with a GUILD_MEMBERS_CHUNK carrying its nonce.
func TestCommandsRecorded(t *testing.T) {
	s := startFake(t, WithShards(2), WithGuilds(4))
	c := connect(t, s)
	r := c.identify(s, 1, 2)
	presence := m{"since": nil, "activities": []m{}, "status": "idle", "afk": false}
	c.send(m{"op": 3, "d": presence})
	gid := r.Guilds[0].ID
	c.send(m{"op": 8, "d": m{"guild_id": gid, "query": "", "limit": 0, "nonce": "n-42"}})
	env := c.nextOp(0, "GUILD_MEMBERS_CHUNK")
	var chunk struct {
		Nonce string `json:"nonce"`
	}
	if err := json.Unmarshal(env.D, &chunk); err != nil || chunk.Nonce != "n-42" {
		t.Fatalf("chunk %s: nonce %q (%v), want n-42", env.D, chunk.Nonce, err)
	}
	var viaHTTP []CommandRecord
	if st := getJSON(t, s.URL()+"/_fake/commands", "", &viaHTTP); st != http.StatusOK {
		t.Fatalf("GET /_fake/commands: %d", st)
	}
	for _, got := range [][]CommandRecord{s.Commands(), viaHTTP} {
		if len(got) != 2 || got[0].Op != 3 || got[1].Op != 8 {
			t.Fatalf("commands %+v, want op 3 then op 8", got)
		}
		for _, rec := range got {
			if rec.ShardID != 1 || rec.ShardCount != 2 || rec.SessionID != r.SessionID {
				t.Fatalf("record %+v, want shard 1/2 of session %s", rec, r.SessionID)
			}
		}
		var d struct{ Status string }
		if err := json.Unmarshal(got[0].D, &d); err != nil || d.Status != "idle" {
			t.Fatalf("op 3 recorded d %s", got[0].D)
		}
	}
}
