package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
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
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return exitOK
		}
		return exitBadArgs
	}
	client, norm, err := rf.client()
	if err != nil {
		fmt.Fprintln(stderr, "worker status:", err)
		return exitBadArgs
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fleet, err := worker.ReadFleet(ctx, client, norm)
	if err != nil {
		fmt.Fprintln(stderr, "worker status:", explainRedisErr(err))
		return exitFailed
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(fleet)
		return exitOK
	}
	printFleet(stdout, fleet)
	return exitOK
}

// printFleet writes one row per shard (one per worker without shards).
func printFleet(out io.Writer, fleet []worker.Status) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKER\tHOST\tSHARD\tSTATUS\tLATENCY\tLEASE EXPIRES IN\tERROR")
	shards := 0
	for _, w := range fleet {
		expires := "expired"
		if w.LeaseExpiresInMS >= 0 {
			expires = (time.Duration(w.LeaseExpiresInMS) * time.Millisecond).String()
		}
		if len(w.Shards) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t%s\t%s\n", w.WorkerID, w.Host, expires, w.Error)
		}
		for _, s := range w.Shards {
			errText := s.Error
			if errText == "" {
				errText = w.Error
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", w.WorkerID, w.Host,
				strconv.Itoa(s.ID)+"/"+strconv.Itoa(s.Count), s.Status,
				(time.Duration(s.LatencyMS*1000) * time.Microsecond).String(), expires, errText)
			shards++
		}
	}
	_ = tw.Flush()
	fmt.Fprintf(out, "%d workers, %d shards\n", len(fleet), shards)
}
