package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shardfleet/shardfleet/internal/worker"
)

// runStatus is `worker status`: the fleet as the workers published it in Redis.
func runStatus(args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("worker status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rf := addRedisFlags(fs, env)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: worker status [flags]\n\nPrints every worker of the fleet, its shards, their status and latency, and when its leases expire.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code, ok := parseSubcommand(fs, args); !ok {
		return code
	}
	target, client, norm, err := rf.client()
	if err != nil {
		fmt.Fprintln(stderr, "worker status:", err)
		return exitBadArgs
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fleet, err := worker.ReadFleet(ctx, client, norm)
	if err != nil {
		fmt.Fprintln(stderr, "worker status:", target.explain(ctx, err))
		return exitFailed
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(fleet)
		return exitOK
	}
	printFleet(stdout, fleet, time.Now())
	return exitOK
}

// printFleet writes one row per shard (one per worker without shards), then
// what each worker waits for. A worker whose liveness lapsed is marked stale,
// with how long ago it last published, and so are the shards it last showed.
func printFleet(out io.Writer, fleet []worker.Status, now time.Time) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKER\tHOST\tSHARD\tSTATUS\tLATENCY\tLEASE EXPIRES IN\tERROR")
	shards, stale := 0, 0
	for _, w := range fleet {
		expires := "expired"
		if w.LeaseExpiresInMS >= 0 {
			expires = (time.Duration(w.LeaseExpiresInMS) * time.Millisecond).String()
		}
		mark := ""
		if w.Stale {
			stale++
			mark = "stale: "
			if !w.UpdatedAt.IsZero() {
				expires += ", last seen " + now.Sub(w.UpdatedAt).Round(time.Second).String() + " ago"
			}
		}
		if len(w.Shards) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\t%s\t-\t%s\t%s\n", w.WorkerID, w.Host, strings.TrimSuffix(mark, ": "), expires, w.Error)
		}
		for _, s := range w.Shards {
			errText := s.Error
			if errText == "" {
				errText = w.Error
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", w.WorkerID, w.Host,
				strconv.Itoa(s.ID)+"/"+strconv.Itoa(s.Count), mark+s.Status,
				(time.Duration(s.LatencyMS*1000) * time.Microsecond).String(), expires, errText)
			if !w.Stale {
				shards++
			}
		}
	}
	_ = tw.Flush()
	summary := fmt.Sprintf("%d workers, %d shards", len(fleet)-stale, shards)
	if stale > 0 {
		summary += fmt.Sprintf(" (and %d stale workers)", stale)
	}
	fmt.Fprintln(out, summary)
	for _, w := range fleet {
		if w.Stale {
			continue
		}
		for _, wt := range w.Waiting {
			line := w.WorkerID + " waits: " + wt.Reason
			if wt.Shards > 0 {
				line += fmt.Sprintf(" (%d shards)", wt.Shards)
			}
			if wt.LeftMS > 0 {
				line += ", " + (time.Duration(wt.LeftMS) * time.Millisecond).String() + " left"
			}
			fmt.Fprintln(out, line)
		}
	}
}

// parseSubcommand parses a subcommand's flags; when it fails, code is the
// exit code: exitOK after -h (the usage is printed), exitBadArgs otherwise
// (the flag package printed why).
func parseSubcommand(fs *flag.FlagSet, args []string) (code int, ok bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, flag.ErrHelp):
		return exitOK, false
	default:
		return exitBadArgs, false
	}
}
