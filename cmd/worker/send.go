package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/shardfleet/shardfleet/pkg/fleet"
	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// runSend is `worker send`: queue one gateway command for the fleet and
// print its outcome (one per shard with -all), waiting at most -wait.
func runSend(args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("worker send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rf := addRedisFlags(fs, env)
	guild := fs.Uint64("guild", 0, "send to the shard serving this guild (default for op 4 and 8: d's guild_id)")
	shard := fs.Int("shard", -1, "send to this shard ID (with -count)")
	count := fs.Int("count", 0, "shard count of -shard")
	all := fs.Bool("all", false, "send to every shard; with op 3 it also becomes the fleet's presence for every IDENTIFY")
	op := fs.Int("op", 0, "gateway opcode: 3 (presence), 4 (voice state) or 8 (request guild members)")
	d := fs.String("d", "", "the command's d, as JSON")
	deadline := fs.Duration("deadline", 0, "drop the command (outcome expired) if not sent within this; 0: no deadline")
	wait := fs.Duration("wait", 30*time.Second, "how long to wait for the outcomes")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: worker send [-guild G | -shard N -count C | -all] -op OP -d JSON [-deadline 30s]\n\nQueues a gateway command for the shard's owner and prints its outcome: sent (session, time), expired or rejected (why).\n\nFlags:")
		fs.PrintDefaults()
	}
	if code, ok := parseSubcommand(fs, args); !ok {
		return code
	}
	to, err := sendTarget(*guild, *shard, *count, *all)
	switch {
	case err != nil:
	case *deadline < 0:
		err = gateway.NewSettingError("-deadline", deadline.String(), "must not be negative; 0: no deadline")
	case *wait <= 0:
		err = gateway.NewSettingError("-wait", wait.String(), "must be positive, e.g. 30s")
	}
	if err != nil {
		fmt.Fprintln(stderr, "worker send:", err)
		return exitBadArgs
	}
	_, client, norm, err := rf.client()
	if err != nil {
		fmt.Fprintln(stderr, "worker send:", err)
		return exitBadArgs
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *wait)
	defer cancel()
	cmd := fleet.Command{Op: gateway.Opcode(*op), D: json.RawMessage(*d)}
	if *deadline > 0 {
		cmd.Deadline = time.Now().Add(*deadline)
	}
	return sendAndReport(ctx, fleet.NewClient(client, norm), to, cmd, stdout, stderr)
}

// sendTarget checks that exactly one of -guild, -shard/-count and -all is
// given (none: op 4 and 8 route by d's guild_id).
func sendTarget(guild uint64, shard, count int, all bool) (fleet.Target, error) {
	given := 0
	for _, set := range []bool{guild != 0, shard >= 0 || count != 0, all} {
		if set {
			given++
		}
	}
	switch {
	case given > 1:
		return fleet.Target{}, gateway.NewSettingError("-guild, -shard/-count, -all", "", "give only one of them")
	case all:
		return fleet.ToAll(), nil
	case guild != 0:
		return fleet.ToGuild(guild), nil
	case shard >= 0 || count != 0:
		key := fleet.ShardKey{ID: shard, Count: count}
		if err := key.Validate(); err != nil {
			return fleet.Target{}, gateway.NewSettingError("-shard/-count", fmt.Sprintf("%d/%d", shard, count), "want 0 <= shard < count")
		}
		return fleet.ToShard(shard, count), nil
	}
	return fleet.Target{}, nil
}

// sendAndReport queues cmd and prints one outcome line per shard. Exit code
// 0 when every copy was sent.
func sendAndReport(ctx context.Context, c *fleet.Client, to fleet.Target, cmd fleet.Command, stdout, stderr io.Writer) int {
	var queued []fleet.Queued
	var err error
	if to.All && cmd.Op == gateway.OpPresenceUpdate {
		queued, err = c.SendPresence(ctx, cmd.D)
	} else {
		queued, err = c.Send(ctx, to, cmd)
	}
	if rej := (*fleet.RejectedError)(nil); errors.As(err, &rej) {
		fmt.Fprintln(stdout, "rejected:", rej.Reason)
		return exitFailed
	}
	if err != nil {
		fmt.Fprintln(stderr, "worker send:", explainRedisErr(err))
		return exitFailed
	}
	code := exitOK
	for _, q := range queued {
		o, err := c.WaitOutcome(ctx, q.ID)
		switch {
		case err != nil:
			fmt.Fprintf(stdout, "%s shard %s: no outcome yet (still queued): %v\n", q.ID, q.Shard, err)
			code = exitFailed
		case o.State == fleet.StateSent:
			fmt.Fprintf(stdout, "%s shard %s: sent on session %s at %s\n", q.ID, q.Shard, o.Session, o.Time().UTC().Format(time.RFC3339Nano))
		case o.State == fleet.StateRejected:
			fmt.Fprintf(stdout, "%s shard %s: rejected: %s\n", q.ID, q.Shard, o.Reason)
			code = exitFailed
		default:
			fmt.Fprintf(stdout, "%s shard %s: %s at %s\n", q.ID, q.Shard, o.State, o.Time().UTC().Format(time.RFC3339Nano))
			code = exitFailed
		}
	}
	return code
}
