package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/lease"
	fleetclient "github.com/shardfleet/shardfleet/pkg/fleet"
	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// Gateway commands flow during every chaos round: some queued before the
// fault (not in a round that loses Redis's data: they go with it), some
// while the fleet heals, plus some already past their deadline. After the
// round every command must have an outcome; every one sent must be at the
// fake, also in the rounds where Discord's side ends connections or
// sessions (a command written as the connection dropped is sent again on
// the next one, or by the next owner: docs/commands.md, "What is
// guaranteed"); none expired may be.

// chaosCommandSettle bounds how long a command recorded `sent` may take to
// reach the fake: `sent` is recorded at the write, and one a connection or
// its owner lost is sent again once the shard is back (at most a heartbeat
// interval, a lease TTL and a heal later).
const chaosCommandSettle = 15 * time.Second

// chaosCommands is one round's commands: name -> command ID.
type chaosCommands struct {
	ids     map[string]string
	expired map[string]string // queued past their deadline
}

// cmdFigures is what became of a round's commands.
type cmdFigures struct{ sent, recorded, repeated, expired, lost int }

func (f cmdFigures) String() string {
	return fmt.Sprintf("%d/%d/%d/%d/%d", f.sent, f.recorded, f.repeated, f.expired, f.lost)
}

// queueCommands queues one op 3 per shard of the layout (and one past its
// deadline on the first), named r<round>-<phase>-<shard>.
func (c *chaosWorld) queueCommands(round int, phase string, into *chaosCommands) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client := fleetclient.NewClient(c.fleetClient(), prefix)
	for i, k := range c.layoutKeys() {
		name := fmt.Sprintf("r%d-%s-%d/%d", round, phase, k.ID, k.Count)
		q, err := client.Send(ctx, fleetclient.ToShard(k.ID, k.Count), chaosPresence(name, time.Time{}))
		if err != nil {
			c.t.Errorf("round %d: queue command %s: %v", round, name, err)
			return
		}
		into.ids[name] = q[0].ID
		if i == 0 {
			name += "-late"
			q, err := client.Send(ctx, fleetclient.ToShard(k.ID, k.Count), chaosPresence(name, time.Now().Add(-time.Second)))
			if err != nil {
				c.t.Errorf("round %d: queue command %s: %v", round, name, err)
				return
			}
			into.expired[name] = q[0].ID
		}
	}
}

// commandsReached polls the fake's records until every command named in
// outcomes as `sent` is in them, or chaosCommandSettle passed; it returns
// the last records.
func (c *chaosWorld) commandsReached(outcomes map[string]fleetclient.Outcome) []gatewaytest.CommandRecord {
	c.t.Helper()
	deadline := time.Now().Add(chaosCommandSettle)
	for {
		recs := c.fake.commands(c.t)
		missing := 0
		for name, o := range outcomes {
			if o.State == fleetclient.StateSent && len(commandsWith(recs, `"name":"`+name+`"`)) == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			return recs
		}
		time.Sleep(100 * time.Millisecond) // polling a condition, with a deadline
	}
}

func chaosPresence(name string, deadline time.Time) fleetclient.Command {
	return fleetclient.Command{Op: gateway.OpPresenceUpdate, Deadline: deadline, D: json.RawMessage(
		`{"status":"online","activities":[{"name":"` + name + `","type":0}],"since":null,"afk":false}`)}
}

// checkCommands waits for every command's outcome and compares them with
// the fake's records.
func (c *chaosWorld) checkCommands(where string, cmds chaosCommands) cmdFigures {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := fleetclient.NewClient(c.fleetClient(), prefix)
	outcomes := map[string]fleetclient.Outcome{}
	for _, set := range []map[string]string{cmds.ids, cmds.expired} {
		for name, id := range set {
			o, err := client.WaitOutcome(ctx, id)
			if err != nil {
				c.t.Errorf("commands: %s: command %s has no outcome: %v", where, name, err)
				continue
			}
			outcomes[name] = o
		}
	}
	recs := c.commandsReached(outcomes)
	var fig cmdFigures
	for name, o := range outcomes {
		perShard := map[lease.ShardKey]int{}
		for _, r := range commandsWith(recs, `"name":"`+name+`"`) {
			perShard[lease.ShardKey{ID: r.ShardID, Count: r.ShardCount}]++
		}
		n := 0
		for _, k := range perShard {
			n += k
			fig.repeated += k - 1
		}
		switch {
		case o.State == fleetclient.StateExpired:
			fig.expired++
			if n > 0 {
				c.t.Errorf("commands: %s: %s expired but reached Discord %d times", where, name, n)
			}
		case o.State == fleetclient.StateSent && n > 0:
			fig.sent++
			fig.recorded++
		case o.State == fleetclient.StateSent:
			fig.sent++
			fig.lost++
			c.t.Errorf("commands: %s: %s recorded as sent on %s but never reached the fake", where, name, o.Session)
		default:
			c.t.Errorf("commands: %s: %s: outcome %+v", where, name, o)
		}
	}
	for name := range cmds.expired {
		if o := outcomes[name]; o.State == fleetclient.StateSent {
			c.t.Errorf("commands: %s: %s was sent past its deadline", where, name)
		}
	}
	return fig
}

// fleetClient reaches every key of the fleet: its partitions' client, or
// the one Redis.
func (c *chaosWorld) fleetClient() redis.UniversalClient {
	if c.partitions != nil {
		return c.partitions
	}
	return c.client
}
