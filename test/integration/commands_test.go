package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/disgoorg/snowflake/v2"
	"github.com/redis/go-redis/v9"

	fleetclient "github.com/shardfleet/shardfleet/pkg/fleet"
	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

func (f *fake) commands(t testing.TB) []gatewaytest.CommandRecord {
	return fakeGet[[]gatewaytest.CommandRecord](t, f, "/_fake/commands")
}

// sendCLI runs `worker send args...` against the fleet's Redis and returns
// its output and exit code.
func (f *fleet) sendCLI(args ...string) (string, int) {
	f.t.Helper()
	return f.workerCLI(append([]string{"send"}, args...)...)
}

// guildOf returns a guild of the fake served by shard id of count.
func guildOf(t testing.TB, fk *fake, id, count int) snowflake.ID {
	t.Helper()
	for _, g := range fakeGet[[]snowflake.ID](t, fk, "/_fake/guilds") {
		if int(uint64(g)>>22)%count == id {
			return g
		}
	}
	t.Fatalf("the fake has no guild on shard %d/%d", id, count)
	return 0
}

// commandOf finds the recorded command whose d contains needle.
func commandsWith(recs []gatewaytest.CommandRecord, needle string) []gatewaytest.CommandRecord {
	var out []gatewaytest.CommandRecord
	for _, r := range recs {
		if strings.Contains(string(r.D), needle) {
			out = append(out, r)
		}
	}
	return out
}

// TestCommandsReachTheirShard: shards IDENTIFY with PRESENCE; op 8 through
// the CLI and through pkg/fleet
// reaches the guild's shard and its GUILD_MEMBERS_CHUNK with the nonce is
// committed to the stream; op 3 to -all reaches every shard and becomes the
// presence of the next IDENTIFY of each; invalid and expired commands never
// reach Discord and say why.
func TestCommandsReachTheirShard(t *testing.T) {
	const count = 2
	f := newFleet(t, count, 20)
	startup := `PRESENCE={"status":"idle","activities":[{"name":"start-up","type":0}],"since":null,"afk":false}`
	f.startWorker("w1", startup)
	f.startWorker("w2", startup)
	f.waitAllReady("every shard READY")
	for _, id := range f.fake.identifies(t) {
		if !strings.Contains(string(id.Presence), "start-up") {
			t.Errorf("first IDENTIFY of shard %d carried presence %s, want PRESENCE's", id.ShardID, id.Presence)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := fleetclient.NewClient(f.client, prefix)

	g1 := guildOf(t, f.fake, 1, count)
	out, code := f.sendCLI("-guild", g1.String(), "-op", "8",
		"-d", fmt.Sprintf(`{"guild_id":"%s","query":"","limit":0,"nonce":"cli-nonce"}`, g1))
	if code != 0 || !strings.Contains(out, "shard 1/2: sent on session") {
		t.Fatalf("worker send op 8: exit %d, output %q", code, out)
	}
	recs := commandsWith(f.fake.commands(t), "cli-nonce")
	if len(recs) != 1 || recs[0].Op != gateway.OpRequestGuildMembers || recs[0].ShardID != 1 || recs[0].ShardCount != count {
		t.Fatalf("the fake recorded %+v, want one op 8 on shard 1/2", recs)
	}
	poll(t, "the CLI's GUILD_MEMBERS_CHUNK in the stream", 10*time.Second, func() bool {
		return chunkInStream(t, f, "cli-nonce", 1)
	})

	g0 := guildOf(t, f.fake, 0, count)
	q := "a"
	chunks, err := client.RequestMembers(ctx, gateway.RequestGuildMembers{GuildID: g0, Query: &q, Limit: 10, Nonce: "client-nonce"})
	if err != nil || len(chunks) != 1 || chunks[0].Nonce != "client-nonce" || chunks[0].Shard != 0 || chunks[0].Count != count {
		t.Fatalf("RequestMembers = %+v, %v; want one chunk of shard 0/2 with the nonce", chunks, err)
	}

	presence := `{"status":"dnd","activities":[{"name":"fleet-wide","type":0}],"since":null,"afk":false}`
	if out, code := f.sendCLI("-all", "-op", "3", "-d", presence); code != 0 || strings.Count(out, ": sent on session") != count {
		t.Fatalf("worker send -all -op 3: exit %d, output %q", code, out)
	}
	got := map[int]bool{}
	for _, r := range commandsWith(f.fake.commands(t), "fleet-wide") {
		got[r.ShardID] = r.Op == gateway.OpPresenceUpdate
	}
	if !got[0] || !got[1] {
		t.Fatalf("op 3 reached shards %v, want both", got)
	}
	before := len(f.fake.identifies(t))
	f.fake.post(t, "/_fake/invalidate?resumable=false&shard=0")
	f.fake.post(t, "/_fake/invalidate?resumable=false&shard=1")
	poll(t, "both shards to IDENTIFY again", 20*time.Second, func() bool {
		return len(f.fake.identifies(t)) >= before+count
	})
	for _, id := range f.fake.identifies(t)[before:] {
		if !strings.Contains(string(id.Presence), "fleet-wide") {
			t.Errorf("re-IDENTIFY of shard %d carried presence %s, want the fleet's", id.ShardID, id.Presence)
		}
	}

	// Invalid: rejected before Redis (CLI) or by the worker (a raw XADD, as a
	// bot in another language might queue it).
	if out, code := f.sendCLI("-shard", "0", "-count", "2", "-op", "8", "-d", `{"guild_id":"1","limit":0}`); code == 0 ||
		!strings.Contains(out, "rejected: op 8 needs query or user_ids") {
		t.Errorf("op 8 without query: exit %d, output %q", code, out)
	}
	if err := f.client.XAdd(ctx, &redis.XAddArgs{Stream: prefix + "cmdq:2:0",
		Values: []any{"id", "raw-bad", "op", "9", "d", "{}"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if o, err := client.WaitOutcome(ctx, "raw-bad"); err != nil || o.State != fleetclient.StateRejected || !strings.Contains(o.Reason, "unknown op 9") {
		t.Errorf("raw op 9: outcome %+v, %v; want rejected, unknown op", o, err)
	}
	if err := f.client.XAdd(ctx, &redis.XAddArgs{Stream: prefix + "cmdq:2:0", Values: []any{"id", "raw-wrong-shard", "op", "4",
		"d", fmt.Sprintf(`{"guild_id":"%s","channel_id":null}`, g1)}}).Err(); err != nil {
		t.Fatal(err)
	}
	if o, err := client.WaitOutcome(ctx, "raw-wrong-shard"); err != nil || o.State != fleetclient.StateRejected || !strings.Contains(o.Reason, "is not on shard 0/2") {
		t.Errorf("raw op 4 for a guild of shard 1 queued for shard 0: outcome %+v, %v; want rejected", o, err)
	}
	q2 := fleetclient.Command{Op: gateway.OpPresenceUpdate, D: json.RawMessage(`{"status":"idle","activities":[{"name":"too-late","type":0}],"since":null,"afk":false}`),
		Deadline: time.Now().Add(-time.Second)}
	queued, err := client.Send(ctx, fleetclient.ToShard(1, count), q2)
	if err != nil {
		t.Fatal(err)
	}
	if o, err := client.WaitOutcome(ctx, queued[0].ID); err != nil || o.State != fleetclient.StateExpired {
		t.Errorf("past-deadline command: outcome %+v, %v; want expired", o, err)
	}
	if n := len(commandsWith(f.fake.commands(t), "too-late")); n != 0 {
		t.Errorf("an expired command reached Discord %d times", n)
	}
	if st := f.fake.stats(t); st.FatalCloses != 0 {
		t.Errorf("fatal closes %d, want 0", st.FatalCloses)
	}
}

// chunkInStream reports whether a GUILD_MEMBERS_CHUNK of nonce from shard is
// committed to the event stream.
func chunkInStream(t testing.TB, f *fleet, nonce string, shard int) bool {
	msgs, err := f.client.XRange(context.Background(), prefix+"events", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.Values["type"] == "GUILD_MEMBERS_CHUNK" && m.Values["shard"] == strconv.Itoa(shard) &&
			strings.Contains(fmt.Sprint(m.Values["data"]), `"nonce":"`+nonce+`"`) {
			return true
		}
	}
	return false
}

// TestCommandsAfterSplit: after a 4011 splits a shard, op 4 addressed to a
// guild reaches the child serving it, and a command still queued for the
// split shard is moved to its guild's child and sent there.
func TestCommandsAfterSplit(t *testing.T) { commandsAfterSplit(t, 0) }

// TestCommandsAfterSplitAcrossPartitions: as TestCommandsAfterSplit, in a
// fleet of 16 partitions, with the queued command's guild on child 2/4: the
// split shard 0/2 is in partition 0, its heir in partition 2, so the command
// moves between two slots.
func TestCommandsAfterSplitAcrossPartitions(t *testing.T) { commandsAfterSplit(t, 2, "PARTITIONS=16") }

// commandsAfterSplit queues a command for split shard 0/2 whose guild child
// staleChild/4 serves, and one for a guild of 2/4 after the split.
func commandsAfterSplit(t *testing.T, staleChild int, env ...string) {
	const count, maxGuilds = 2, 12
	needBinaries(t)
	f := newFleetWithFake(t, count, startFake(t, count, 20, "-max-guilds-per-shard", strconv.Itoa(maxGuilds)))
	f.startWorker("w1", env...)
	f.waitAllReady("every shard READY")
	on := 0
	for _, g := range fakeGet[[]snowflake.ID](t, f.fake, "/_fake/guilds") {
		if uint64(g)>>22%count == 0 {
			on++
		}
	}
	f.fake.post(t, fmt.Sprintf("/_fake/add-guilds?shard=0&count=%d&n=%d", count, maxGuilds+1-on))
	f.fake.post(t, "/_fake/invalidate?resumable=false&shard=0")
	poll(t, "shard 0's re-IDENTIFY closed 4011", 20*time.Second, func() bool { return f.fake.stats(t).FatalCloses >= 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := fleetclient.NewClient(f.client, prefix)
	voice := func(g snowflake.ID, channel string) fleetclient.Command {
		return fleetclient.Command{Op: gateway.OpVoiceStateUpdate, D: json.RawMessage(fmt.Sprintf(
			`{"guild_id":"%s","channel_id":"%s","self_mute":false,"self_deaf":false}`, g, channel))}
	}
	// Queued for the split shard itself, as by a sender that read the layout
	// before the split.
	gA := guildOf(t, f.fake, staleChild, 2*count)
	stale, err := client.Send(ctx, fleetclient.ToShard(0, count), voice(gA, "111"))
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "the split children READY", 30*time.Second, func() bool {
		owners := readyOwners(t, f.client, prefix)
		return len(owners) == 3 // 1/2, and 0/4, 2/4 (IDs 0 and 2)
	})
	gB := guildOf(t, f.fake, 2, 2*count)
	fresh, err := client.Send(ctx, fleetclient.ToGuild(uint64(gB)), voice(gB, "222"))
	if err != nil || fresh[0].Shard != (fleetclient.ShardKey{ID: 2, Count: 2 * count}) {
		t.Fatalf("op 4 to guild %s queued %+v, %v; want shard 2/4", gB, fresh, err)
	}
	for _, tc := range []struct {
		id      string
		channel string
		shard   int
	}{{stale[0].ID, "111", staleChild}, {fresh[0].ID, "222", 2}} {
		o, err := client.WaitOutcome(ctx, tc.id)
		if err != nil || o.State != fleetclient.StateSent || o.Shard != tc.shard || o.Count != 2*count {
			t.Errorf("op 4 for channel %s: outcome %+v, %v; want sent on shard %d/4", tc.channel, o, err, tc.shard)
		}
		recs := commandsWith(f.fake.commands(t), `"channel_id":"`+tc.channel+`"`)
		if len(recs) != 1 || recs[0].ShardID != tc.shard || recs[0].ShardCount != 2*count {
			t.Errorf("op 4 for channel %s recorded %+v, want once on shard %d/4", tc.channel, recs, tc.shard)
		}
	}
}
