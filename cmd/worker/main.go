package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/worker"
	"github.com/shardfleet/shardfleet/pkg/fleet/member"
	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1 // the worker stopped on an error (lost its fleet session, Redis unreachable...)
	exitBadArgs = 2 // invalid configuration
)

func main() {
	os.Exit(run(os.Args[1:], osEnv, os.Stdout, os.Stderr))
}

// run is main without os.Exit, so deferred cleanups run. It returns the exit code.
func run(args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "status" {
		return runStatus(args[1:], env, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "health" {
		return runHealth(args[1:], env, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "send" {
		return runSend(args[1:], env, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "cache" {
		return runCache(args[1:], env, stdout, stderr)
	}
	cfg, err := parseConfig(args, env, stderr)
	if errors.Is(err, ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return exitBadArgs
	}
	logger := newLogger(cfg, stderr)
	redis.SetLogger(redisLog{logger}) // process-wide, as go-redis's logger is
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, logger, stdout); err != nil {
		logger.Error("worker stopped", "err", err)
		return exitFailed
	}
	return exitOK
}

// newLogger builds the process's logger. JSON logs give durations in their
// text form ("1.5s"), as text logs do, not in nanoseconds.
func newLogger(cfg *Config, out io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		opts.ReplaceAttr = durationsAsText
		return slog.New(slog.NewJSONHandler(out, opts))
	}
	return slog.New(slog.NewTextHandler(out, opts))
}

func durationsAsText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// redisLog routes go-redis's own log lines (dial failures, pool notices)
// through the process's logger, so they follow LOG_FORMAT too.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)), "component", "go-redis")
}

// serve wires the worker, its HTTP server and (with -sim) the fake Discord,
// and runs until ctx ends (SIGTERM/SIGINT) or the worker fails.
func serve(ctx context.Context, cfg *Config, logger *slog.Logger, stdout io.Writer) error {
	base := logger // the worker attaches worker_id itself
	logger = logger.With("worker_id", cfg.WorkerID)
	if cfg.Sim {
		fake, err := startSim(cfg, logger)
		if err != nil {
			return err
		}
		defer fake.Close()
	}
	logger.Info("starting", "config", *cfg)
	var client redis.UniversalClient
	if cfg.RedisURL != "" {
		client = cfg.redis.newClient(logger)
		defer client.Close()
		pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := client.Ping(pingCtx).Err()
		cancel()
		if err != nil {
			return fmt.Errorf("reach redis (%s, REDIS_URL %s): %w", cfg.redis.Kind(), redactURL(string(cfg.RedisURL)),
				cfg.redis.explain(ctx, err))
		}
	}
	mc := memberConfig(cfg, base, client)
	if cfg.Events == "stdout" {
		mc.Handler = jsonLines(stdout)
	}
	w, err := member.New(mc)
	if err != nil {
		return asSettingError(err)
	}
	httpSrv, err := startHTTP(cfg, newHandler(w, client, cfg.KeyPrefix), logger)
	if err != nil {
		return err
	}
	defer httpSrv.shutdown()
	summaryCtx, stopSummary := context.WithCancel(context.Background())
	summaryDone := make(chan struct{})
	go func() { defer close(summaryDone); summarize(summaryCtx, w, cfg.SummaryInterval, logger) }()
	defer func() { stopSummary(); <-summaryDone }()
	err = w.Run(ctx)
	logger.Info("stopped", "events_received", w.Status().EventsReceived)
	return asSettingError(err)
}

// memberConfig is the fleet member cfg describes (with client nil, a
// standalone process running every shard).
func memberConfig(cfg *Config, logger *slog.Logger, client redis.UniversalClient) member.Config {
	mc := member.DefaultConfig()
	mc.Token = cfg.Token.Reveal()
	mc.WorkerID = cfg.WorkerID
	mc.Logger = logger
	mc.Redis = client
	mc.KeyPrefix = cfg.KeyPrefix
	mc.LeaseTTL, mc.LeaseRenewInterval, mc.LeaseRenewDeadline = cfg.LeaseTTL, cfg.LeaseRenewInterval, cfg.LeaseRenewDeadline
	mc.EventStreamMaxLen, mc.EventBatchSize, mc.EventFlushInterval = cfg.EventStreamMaxLen, cfg.EventBatchSize, cfg.EventFlushInterval
	mc.ShardCount, mc.MaxConcurrency = cfg.ShardCount, cfg.MaxConcurrency
	mc.BacklogShardBytes, mc.BacklogWorkerBytes = cfg.BacklogShardBytes, cfg.BacklogWorkerBytes
	mc.IdentifyWindow, mc.IdentifyMargin = cfg.IdentifyWindow, cfg.IdentifyMargin
	mc.BudgetReserve = cfg.BudgetReserve
	mc.APIURL, mc.GatewayURL = cfg.APIURL, cfg.GatewayURL
	mc.Cache, mc.CacheMessages, mc.CacheOld = cfg.Cache.Kinds.String(), cfg.Cache.Messages, cfg.Cache.Old
	mc.Partitions = cfg.Partitions
	gwDef := gateway.DefaultConfig()
	mc.GatewayOptions = []gateway.ConfigOpt{gateway.WithIntents(cfg.Intents), gateway.WithCompression(cfg.Compression),
		gateway.WithReadyTimeout(cfg.ReadyTimeout),
		gateway.WithSendRateLimit(gwDef.CommandsPerWindow, cfg.SendWindow, gwDef.ReservedCommands)}
	mc.Presence = cfg.Presence
	mc.ShutdownTimeout = cfg.ShutdownTimeout
	mc.Host, _ = os.Hostname()
	mc.HTTPAddr = cfg.HTTPAddr
	return mc
}

// summarize logs one line per interval: shards ready, events per second.
func summarize(ctx context.Context, w interface{ Status() worker.Status }, every time.Duration, logger *slog.Logger) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var lastEvents uint64
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			st := w.Status()
			ready := 0
			for _, s := range st.Shards {
				if s.Status == gateway.StatusReady.String() {
					ready++
				}
			}
			rate := float64(st.EventsReceived-lastEvents) / now.Sub(last).Seconds()
			lastEvents, last = st.EventsReceived, now
			attrs := []any{"shards_ready", fmt.Sprintf("%d/%d", ready, len(st.Shards)),
				"events_per_second", fmt.Sprintf("%.1f", rate), "events_total", st.EventsReceived, "ready", st.Ready}
			if st.Error != "" {
				attrs = append(attrs, "error", st.Error)
			}
			logger.Info("summary", attrs...)
		}
	}
}
