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

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/cache"
	"github.com/shardfleet/shardfleet/internal/lease"
)

// runCache is `worker cache dump|stats`: the fleet's shared state cache as
// the workers keep it in Redis (the kinds they published at start).
func runCache(args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "dump" && args[0] != "stats") {
		fmt.Fprintln(stderr, "Usage: worker cache dump [-guild G] | worker cache stats [-json]  (-h for flags)")
		return exitBadArgs
	}
	sub := args[0]
	fs := flag.NewFlagSet("worker cache "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	rf := addRedisFlags(fs, env)
	guild := fs.Uint64("guild", 0, "dump: only this guild")
	asJSON := fs.Bool("json", false, "stats: print JSON instead of a table")
	timeout := fs.Duration("timeout", time.Minute, "bound on reading the cache")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: worker cache dump [-guild G]\n       worker cache stats [-json]\n\n"+
			"dump prints the cache as JSON ({\"guilds\":{id:{guild, unavailable, channels, roles, ...}}}, only the kinds kept);\n"+
			"stats prints the objects and Redis memory (MEMORY USAGE, sampled) of each kind.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code, ok := parseSubcommand(fs, args[1:]); !ok {
		return code
	}
	target, client, norm, err := rf.client()
	if err != nil {
		fmt.Fprintln(stderr, "worker cache:", err)
		return exitBadArgs
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	// The fleet's stored partition count places each guild's keys.
	keys, err := lease.ResolvePartitions(ctx, client, lease.NewKeys(norm), 0)
	switch {
	case err != nil:
	case sub == "dump":
		err = dumpCache(ctx, client, keys, *guild, stdout)
	default:
		err = cacheStats(ctx, client, keys, *asJSON, stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "worker cache "+sub+":", target.explain(ctx, err))
		return exitFailed
	}
	return exitOK
}

// cacheScope reads what the cache keeps and over which shards: the fleet
// layout's current shards (a guild's keys are under the shard serving it).
func cacheScope(ctx context.Context, c redis.UniversalClient, keys lease.Keys) (cache.Kinds, lease.Layout, error) {
	kinds, err := cache.ReadKinds(ctx, c, keys)
	if err != nil {
		return 0, lease.Layout{}, err
	}
	layout, err := lease.LoadLayout(ctx, c, keys)
	if err != nil {
		return 0, lease.Layout{}, fmt.Errorf("read the fleet layout (has a worker of this KEY_PREFIX started?): %w", err)
	}
	return kinds, layout, nil
}

func dumpCache(ctx context.Context, c redis.UniversalClient, keys lease.Keys, guild uint64, out io.Writer) error {
	kinds, layout, err := cacheScope(ctx, c, keys)
	if err != nil {
		return err
	}
	st := cache.State{Guilds: map[string]*cache.Guild{}}
	if guild == 0 {
		st, err = cache.Dump(ctx, c, keys, layout.Shards(), kinds)
	} else {
		id := strconv.FormatUint(guild, 10)
		var g *cache.Guild
		if g, err = cache.ReadGuild(ctx, c, keys, layout.ShardFor(guild), id, kinds); g != nil {
			st.Guilds[id] = g
		}
	}
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(st)
}

func cacheStats(ctx context.Context, c redis.UniversalClient, keys lease.Keys, asJSON bool, out io.Writer) error {
	kinds, layout, err := cacheScope(ctx, c, keys)
	if err != nil {
		return err
	}
	stats, err := cache.Stats(ctx, c, keys, layout.Shards(), kinds)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(out).Encode(stats)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tCOUNT\tBYTES\tBYTES/OBJECT")
	var total int64
	for _, s := range stats {
		per := "-"
		if s.Count > 0 {
			per = strconv.FormatInt(s.Bytes/s.Count, 10)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", s.Kind, s.Count, s.Bytes, per)
		total += s.Bytes
	}
	_ = tw.Flush()
	fmt.Fprintf(out, "cache kinds: %s; %d bytes in all\n", kinds, total)
	return nil
}
