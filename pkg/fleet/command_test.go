package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/internal/redistest"
	"github.com/shardfleet/shardfleet/pkg/gateway"
)

func TestValidate(t *testing.T) {
	long := `"` + strings.Repeat("x", 33) + `"`
	for _, tc := range []struct {
		op     gateway.Opcode
		d      string
		reason string // "" valid
		guild  uint64
	}{
		{3, `{"status":"online","activities":[],"since":null,"afk":false}`, "", 0},
		{4, `{"guild_id":"41771983423143937","channel_id":null,"self_mute":false,"self_deaf":false}`, "", 41771983423143937},
		{8, `{"guild_id":41771983423143937,"query":"","limit":0}`, "", 41771983423143937},
		{8, `{"guild_id":"1","user_ids":["2"],"limit":0,"nonce":"n"}`, "", 1},
		{9, `{}`, "unknown op 9", 0},
		{1, `{}`, "unknown op 1", 0},
		{3, `[]`, "not a JSON object", 0},
		{3, `{"status":`, "not a JSON object", 0},
		{3, `{"status":"` + strings.Repeat("x", 4096) + `"}`, "over 4096", 0},
		{4, `{"channel_id":null}`, "needs guild_id", 0},
		{4, `{"guild_id":"0"}`, "needs guild_id", 0},
		{4, `{"guild_id":"abc"}`, "needs guild_id", 0},
		{8, `{"guild_id":"1","limit":0}`, "needs query or user_ids", 0},
		{8, `{"guild_id":"1","user_ids":null,"limit":0}`, "needs query or user_ids", 0},
		{8, `{"guild_id":"1","query":"","limit":0,"nonce":` + long + `}`, "nonce of 33 bytes", 0},
	} {
		guild, err := Validate(tc.op, json.RawMessage(tc.d))
		var rej *RejectedError
		switch {
		case tc.reason == "" && (err != nil || guild != tc.guild):
			t.Errorf("Validate(%d, %.40s) = %d, %v; want guild %d", tc.op, tc.d, guild, err, tc.guild)
		case tc.reason != "" && (!errors.As(err, &rej) || !strings.Contains(rej.Reason, tc.reason)):
			t.Errorf("Validate(%d, %.40s) = %v; want rejected: %s", tc.op, tc.d, err, tc.reason)
		}
	}
}

// FuzzValidate: any d either validates or is a *RejectedError, never a panic;
// a valid command fits one gateway payload.
func FuzzValidate(f *testing.F) {
	f.Add(8, []byte(`{"guild_id":"1","query":"","limit":0,"nonce":"x"}`))
	f.Add(3, []byte(`{"status":"online"}`))
	f.Add(4, []byte(`{"guild_id":1e3}`))
	f.Fuzz(func(t *testing.T, op int, d []byte) {
		_, err := Validate(gateway.Opcode(op), d)
		var rej *RejectedError
		if err != nil && !errors.As(err, &rej) {
			t.Fatalf("error %v is not a *RejectedError", err)
		}
		if err == nil && len(d)+len(`{"op":0,"d":}`) > gateway.MaxPayloadSize {
			t.Fatalf("a %d-byte d validated", len(d))
		}
	})
}

// TestSendRoutesThroughTheLayout: a guild-addressed command is queued for
// the shard serving the guild after a split, ToAll for every current shard,
// and an invalid one nowhere.
func TestSendRoutesThroughTheLayout(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client(t)
	ctx := context.Background()
	c := NewClient(rc, "app")
	if _, err := c.Send(ctx, ToGuild(1), Command{Op: 4, D: json.RawMessage(`{"guild_id":"1"}`)}); !isRejected(err) {
		t.Fatalf("send without a layout: %v, want rejected", err)
	}
	keys := keyspace.NewKeys("app")
	// Base count 2, shard 1 split in 2: shards 0/2, 1/4 and 3/4.
	if err := rc.HSet(ctx, keys.Layout(), "version", 2, "data", `{"count":2,"splits":[{"key":{"id":1,"count":2},"factor":2}]}`).Err(); err != nil {
		t.Fatal(err)
	}
	guild := uint64(3) << 22 // shard 1 of 2, then shard 3 of 4
	q, err := c.Send(ctx, Target{}, Command{Op: 4, D: json.RawMessage(`{"guild_id":"` + formatUint(guild) + `","channel_id":null}`),
		Deadline: time.Now().Add(time.Hour)})
	if err != nil || len(q) != 1 || q[0].Shard != (ShardKey{ID: 3, Count: 4}) {
		t.Fatalf("Send by d's guild_id = %+v, %v; want shard 3/4", q, err)
	}
	msgs, err := rc.XRange(ctx, keys.Commands(ShardKey{ID: 3, Count: 4}), "-", "+").Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("queue 3/4: %v, %v", msgs, err)
	}
	server, err := rc.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	dl, _ := strconv.ParseInt(msgs[0].Values["deadline"].(string), 10, 64)
	if left := time.UnixMilli(dl).Sub(server); left < 59*time.Minute || left > time.Hour {
		t.Fatalf("deadline %d is %v after the server's clock, want an hour", dl, left)
	}
	if v := msgs[0].Values; v["id"] != q[0].ID || v["op"] != "4" || !strings.Contains(v["d"].(string), `"channel_id":null`) {
		t.Fatalf("queued entry %v", v)
	}
	all, err := c.SendPresence(ctx, json.RawMessage(`{"status": "idle", "activities": []}`))
	if err != nil || len(all) != 3 {
		t.Fatalf("SendPresence = %+v, %v; want 3 shards", all, err)
	}
	if p, _ := rc.Get(ctx, keys.Presence()).Result(); p != `{"status":"idle","activities":[]}` {
		t.Fatalf("stored presence %q, want the compacted d", p)
	}
	if _, err := c.Send(ctx, ToShard(0, 2), Command{Op: 8, D: json.RawMessage(`{"guild_id":"1"}`)}); !isRejected(err) {
		t.Fatalf("invalid op 8: %v, want rejected", err)
	}
	if _, err := c.Send(ctx, ToShard(0, 2), Command{Op: 4, D: json.RawMessage(`{"guild_id":"` + formatUint(guild) + `"}`)}); !isRejected(err) {
		t.Fatalf("op 4 to a shard not serving its guild: %v, want rejected", err)
	}
	if _, err := c.Send(ctx, ToAll(), Command{Op: 4, D: json.RawMessage(`{"guild_id":"1"}`)}); !isRejected(err) {
		t.Fatalf("op 4 to all: %v, want rejected", err)
	}
	if n, _ := rc.XLen(ctx, keys.Commands(ShardKey{ID: 0, Count: 2})).Result(); n != 1 {
		t.Fatalf("queue 0/2 holds %d, want 1 (the presence only)", n)
	}
	if _, err := lease.LoadLayout(ctx, rc, keys); err != nil {
		t.Fatal(err)
	}
}

// TestOutcome: absent is ErrNoOutcome; WaitOutcome returns what a worker
// records, and gives up with ctx.
func TestOutcome(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client(t)
	c := NewClient(rc, "")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.WaitOutcome(ctx, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitOutcome without outcome: %v", err)
	}
	rec := `{"id":"x","state":"sent","shard":1,"count":2,"session":"S","at":1700000000000}`
	if err := rc.Set(context.Background(), keyspace.NewKeys("").PartitionCommandOutcome(0, "x"), rec, 0).Err(); err != nil {
		t.Fatal(err)
	}
	o, err := c.WaitOutcome(context.Background(), "x")
	if err != nil || o.State != StateSent || o.Session != "S" || o.Time().UnixMilli() != 1700000000000 {
		t.Fatalf("WaitOutcome = %+v, %v", o, err)
	}
	if err := rc.Set(context.Background(), keyspace.NewKeys("").PartitionCommandOutcome(0, "y"), "{", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Outcome(context.Background(), "y"); !errors.Is(err, keyspace.ErrCorrupt) {
		t.Fatalf("corrupt outcome: %v", err)
	}
}

func isRejected(err error) bool {
	var rej *RejectedError
	return errors.As(err, &rej)
}

func formatUint(v uint64) string { return strconv.FormatUint(v, 10) }
