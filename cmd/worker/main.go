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

	"github.com/shardfleet/shardfleet/internal/eventsink"
	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/internal/worker"
	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/redislimiter"
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
		client = cfg.redis.newClient()
		defer client.Close()
		pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := client.Ping(pingCtx).Err()
		cancel()
		if err != nil {
			return fmt.Errorf("reach redis (%s, REDIS_URL %s): %w", cfg.redis.Kind(), redactURL(string(cfg.RedisURL)),
				cfg.redis.explain(ctx, err))
		}
	}
	wc := workerConfig(cfg, base, client)
	if cfg.Events == "stdout" {
		wc.EventHandler = jsonLines(stdout)
	}
	w, err := worker.New(wc)
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

func workerConfig(cfg *Config, logger *slog.Logger, client redis.UniversalClient) worker.Config {
	wc := worker.DefaultConfig()
	wc.Token = cfg.Token.Reveal()
	wc.WorkerID = cfg.WorkerID
	wc.Logger = logger
	wc.Redis = client
	wc.KeyPrefix = cfg.KeyPrefix
	wc.Lease.TTL, wc.Lease.RenewInterval, wc.Lease.RenewDeadline = cfg.LeaseTTL, cfg.LeaseRenewInterval, cfg.LeaseRenewDeadline
	wc.Lease.Partitions = cfg.Partitions
	// The reconcile loop's pacing scales with LEASE_TTL, so compressed
	// timings (tests, demos) rebalance and join at the same relative pace.
	def := lease.DefaultConfig()
	scale := func(d time.Duration) time.Duration {
		return time.Duration(float64(d) * float64(cfg.LeaseTTL) / float64(def.TTL))
	}
	wc.Lease.TickInterval, wc.Lease.TickJitter = scale(def.TickInterval), scale(def.TickJitter)
	wc.Lease.JoinGrace, wc.Lease.RevokeTimeout = scale(def.JoinGrace), max(scale(def.RevokeTimeout), time.Second)
	wc.Lease.DataLossGrace = cfg.LeaseTTL + cfg.LeaseRenewDeadline
	wc.SinkOptions = []eventsink.Option{eventsink.WithMaxLen(cfg.EventStreamMaxLen),
		eventsink.WithBatch(cfg.EventBatchSize, cfg.EventFlushInterval)}
	wc.ShardCount, wc.MaxConcurrency = cfg.ShardCount, cfg.MaxConcurrency
	wc.BacklogShardBytes, wc.BacklogWorkerBytes = cfg.BacklogShardBytes, cfg.BacklogWorkerBytes
	wc.IdentifyWindow, wc.IdentifyMargin = cfg.IdentifyWindow, cfg.IdentifyMargin
	wc.BudgetReserve = cfg.BudgetReserve
	// The limiter's crash-recovery times scale with the lease TTL too, and
	// stay at least a few identify windows long.
	wc.LimiterOptions = []redislimiter.ConfigOpt{
		redislimiter.WithHoldTTL(max(scale(redislimiter.DefaultHoldTTL), 4*cfg.IdentifyWindow, time.Second)),
		redislimiter.WithPollInterval(max(scale(redislimiter.DefaultPollInterval), 20*time.Millisecond)),
		redislimiter.WithTicketTTL(max(scale(redislimiter.DefaultTicketTTL), 60*time.Millisecond)),
	}
	wc.APIURL, wc.GatewayURL = cfg.APIURL, cfg.GatewayURL
	gwDef := gateway.DefaultConfig()
	wc.GatewayOptions = []gateway.ConfigOpt{gateway.WithIntents(cfg.Intents), gateway.WithCompression(cfg.Compression),
		gateway.WithReadyTimeout(cfg.ReadyTimeout),
		gateway.WithSendRateLimit(gwDef.CommandsPerWindow, cfg.SendWindow, gwDef.ReservedCommands)}
	wc.Presence = cfg.Presence
	if cfg.LeaseTTL < def.TTL {
		wc.GatewayOptions = append(wc.GatewayOptions, gateway.WithReconnectBackoff(scale(time.Second), scale(time.Minute)))
	}
	wc.ShutdownTimeout = cfg.ShutdownTimeout
	host, _ := os.Hostname()
	wc.Info = lease.MemberInfo{Host: host, HTTPAddr: cfg.HTTPAddr}
	return wc
}

// summarize logs one line per interval: shards ready, events per second.
func summarize(ctx context.Context, w *worker.Worker, every time.Duration, logger *slog.Logger) {
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
