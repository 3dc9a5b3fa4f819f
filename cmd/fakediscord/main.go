package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "fakediscord:", err)
		os.Exit(2)
	}
}

// run parses args, serves until ctx ends, then closes the fake.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, addr, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	s, err := gatewaytest.Listen(addr, opts...)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer s.Close()
	fmt.Fprintf(stdout, "fakediscord listening on %s\nrest: %s\ngateway: %s\nresume gateway: %s\ncontrol: %s/_fake/\n",
		s.URL(), s.APIURL(), s.GatewayURL(), s.ResumeGatewayURL(), s.URL())
	<-ctx.Done()
	fmt.Fprintln(stdout, "fakediscord stopping")
	return nil
}

// parseFlags turns the command line into options; defaults are the
// library's (DefaultConfig), so the fake behaves like Discord unless told.
func parseFlags(args []string, stderr io.Writer) ([]gatewaytest.Option, string, error) {
	def := gatewaytest.DefaultConfig()
	fs := flag.NewFlagSet("fakediscord", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address (127.0.0.1:0 picks a free port)")
	// The default is resolved after parsing so that -h never prints a token.
	token := fs.String("token", "", "accepted bot token (default $FAKEDISCORD_TOKEN, else "+def.Token+"; never printed)")
	shards := fs.Int("shards", def.Shards, "recommended shard count in /gateway/bot")
	mc := fs.Int("max-concurrency", def.MaxConcurrency, "session_start_limit.max_concurrency")
	window := fs.Duration("identify-window", def.IdentifyWindow, "per-key identify window")
	guilds := fs.Int("guilds", def.Guilds, "number of guilds the bot is in")
	hb := fs.Duration("heartbeat-interval", def.HeartbeatInterval, "HELLO's heartbeat interval")
	hbTimeout := fs.Duration("heartbeat-timeout", 0, "close a silent client after this (0: 1.5 x interval)")
	eps := fs.Float64("events-per-second", def.EventsPerSecond, "steady MESSAGE_CREATE load spread over the guilds")
	resume := fs.Duration("resume-timeout", def.ResumeTimeout, "how long a dropped session stays resumable")
	maxGuilds := fs.Int("max-guilds-per-shard", def.MaxGuildsPerShard, "more guilds than this on one shard closes 4011")
	total := fs.Int("session-start-total", def.SessionStartTotal, "session_start_limit.total")
	resetAfter := fs.Duration("session-start-reset-after", def.SessionStartResetAfter, "session_start_limit.reset_after")
	sendLimit := fs.Int("send-limit", def.SendLimit, "client payloads per -send-window (4008 past it)")
	sendWindow := fs.Duration("send-window", def.SendWindow, "window of -send-limit")
	replay := fs.Int("replay-buffer", def.ReplayBuffer, "dispatches kept per session for RESUME")
	verbose := fs.Bool("v", false, "log at debug level to stderr")
	world := worldFlags(fs, def)
	if err := fs.Parse(args); err != nil {
		return nil, "", err
	}
	if fs.NArg() > 0 {
		return nil, "", fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *token == "" {
		*token = os.Getenv("FAKEDISCORD_TOKEN")
	}
	if *token == "" {
		*token = def.Token
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	opts := []gatewaytest.Option{
		gatewaytest.WithToken(*token), gatewaytest.WithShards(*shards), gatewaytest.WithMaxConcurrency(*mc),
		gatewaytest.WithIdentifyWindow(*window), gatewaytest.WithGuilds(*guilds),
		gatewaytest.WithHeartbeatInterval(*hb), gatewaytest.WithHeartbeatTimeout(*hbTimeout, def.HeartbeatTimeoutCode),
		gatewaytest.WithEventsPerSecond(*eps), gatewaytest.WithResumeTimeout(*resume),
		gatewaytest.WithMaxGuildsPerShard(*maxGuilds), gatewaytest.WithSessionStartLimit(*total, *resetAfter),
		gatewaytest.WithSendLimit(*sendLimit, *sendWindow), gatewaytest.WithReplayBuffer(*replay),
		gatewaytest.WithLogger(logger), gatewaytest.WithWorld(*world.w),
		gatewaytest.WithMutationsPerSecond(*world.mutations),
	}
	return opts, *addr, nil
}

// worldSettings are the flags that size every guild's state.
type worldSettings struct {
	w         *gatewaytest.World
	mutations *float64
}

func worldFlags(fs *flag.FlagSet, def gatewaytest.Config) worldSettings {
	w := def.World
	fs.Uint64Var(&w.Seed, "world-seed", w.Seed, "seed of the generated guild states")
	for _, f := range []struct {
		p    *int
		name string
		what string
	}{
		{&w.Channels, "channels-per-guild", `channels per guild besides "general" (categories, text and voice in turn)`},
		{&w.Threads, "threads-per-guild", "active threads per guild"},
		{&w.Roles, "roles-per-guild", "roles per guild besides @everyone"},
		{&w.Emojis, "emojis-per-guild", "emojis per guild"},
		{&w.Stickers, "stickers-per-guild", "stickers per guild"},
		{&w.Members, "members-per-guild", "members per guild"},
		{&w.VoiceStates, "voice-per-guild", "members in voice per guild (at most -members-per-guild; needs -channels-per-guild >= 3)"},
		{&w.Presences, "presences-per-guild", "members with a presence per guild (at most -members-per-guild)"},
		{&w.Messages, "messages-per-channel", "messages the ground truth (/_fake/state) keeps per channel"},
	} {
		fs.IntVar(f.p, f.name, *f.p, f.what)
	}
	mutations := fs.Float64("mutations-per-second", def.MutationsPerSecond, "steady random world changes (channels, roles, members, voice...)")
	return worldSettings{w: &w, mutations: mutations}
}
