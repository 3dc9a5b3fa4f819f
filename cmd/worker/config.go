package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// Config is the worker process's configuration, from flags and environment.
// Defaults live in the settings table (one place); validate checks it once.
// Every error of parseConfig is a *gateway.ConfigError naming the setting.
type Config struct {
	Token Secret // DISCORD_TOKEN

	Sim                bool    // -sim: run against an in-process fake Discord
	SimGuilds          int     // SIM_GUILDS
	SimEventsPerSecond float64 // SIM_EVENTS_PER_SECOND

	RedisURL     RedisURL // REDIS_URL; empty: local mode
	RedisCluster bool     // REDIS_CLUSTER
	RedisTLS     redisTLS // REDIS_TLS_*
	KeyPrefix    string   // KEY_PREFIX, normalised to contain one {hash tag}
	WorkerID     string   // WORKER_ID

	ShardCount     int                     // SHARD_COUNT; 0 = ask Discord
	APIURL         string                  // DISCORD_API_URL
	GatewayURL     string                  // GATEWAY_URL; empty = ask Discord
	Intents        gateway.Intents         // INTENTS
	Compression    gateway.Compression     // COMPRESSION
	ReadyTimeout   time.Duration           // READY_TIMEOUT
	Presence       *gateway.PresenceUpdate // PRESENCE; nil = none
	SendWindow     time.Duration           // GATEWAY_SEND_WINDOW
	MaxConcurrency int                     // MAX_CONCURRENCY; 0 = ask Discord

	IdentifyWindow time.Duration // IDENTIFY_WINDOW
	IdentifyMargin time.Duration // IDENTIFY_MARGIN
	BudgetReserve  int           // IDENTIFY_BUDGET_RESERVE

	LeaseTTL           time.Duration // LEASE_TTL
	LeaseRenewInterval time.Duration // LEASE_RENEW_INTERVAL
	LeaseRenewDeadline time.Duration // LEASE_RENEW_DEADLINE
	Partitions         int           // PARTITIONS; 0 = the fleet's stored count (a new fleet: 16 on Redis Cluster, else 1)

	EventStreamMaxLen  int64         // EVENT_STREAM_MAXLEN; 0 = uncapped
	EventBatchSize     int           // EVENT_BATCH_SIZE
	EventFlushInterval time.Duration // EVENT_FLUSH_INTERVAL

	BacklogShardBytes  int64 // BACKLOG_SHARD_BYTES
	BacklogWorkerBytes int64 // BACKLOG_WORKER_BYTES

	HTTPAddr        string        // HTTP_ADDR; empty = no HTTP server
	HTTPMaxConns    int           // HTTP_MAX_CONNS
	HTTPIdleTimeout time.Duration // HTTP_IDLE_TIMEOUT
	LogFormat       string        // LOG_FORMAT: text|json
	LogLevel        slog.Level    // LOG_LEVEL
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT
	SummaryInterval time.Duration // SUMMARY_INTERVAL; 0 = no summary lines
	Events          string        // EVENTS: none|stdout

	Cache CacheSettings // CACHE, CACHE_MESSAGES, CACHE_OLD (cachesettings.go)

	explicit map[string]bool // env names of the settings given by flag or environment
	redis    redisTarget     // REDIS_URL and REDIS_TLS_*, built by validate
}

// isSet reports whether the setting named by its environment variable was
// given (by flag or environment) rather than defaulted.
func (c *Config) isSet(env string) bool { return c.explicit[env] }

// LogValue implements slog.LogValuer: the settings an operator wants to see at
// start, with the token and Redis password left out.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("worker_id", c.WorkerID),
		slog.Bool("sim", c.Sim),
		slog.Any("redis_url", c.RedisURL),
		slog.String("key_prefix", c.KeyPrefix),
		slog.Int("shard_count", c.ShardCount),
		slog.String("api_url", c.APIURL),
		slog.Int64("intents", int64(c.Intents)),
		slog.String("http_addr", c.HTTPAddr),
		slog.Duration("lease_ttl", c.LeaseTTL),
		slog.Duration("lease_renew_interval", c.LeaseRenewInterval),
		slog.Duration("identify_window", c.IdentifyWindow),
	)
}

// setting is one configuration knob: a flag, an environment variable, a default
// and a parser. Flag beats environment beats default.
type setting struct {
	flag, env string
	def       string // the default, as text (shown in -h)
	usage     string
	isBool    bool
	parse     func(c *Config, v string) error
}

func dur(field *time.Duration) func(string) error {
	return func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("not a duration (e.g. 1.5s, 300ms)")
		}
		*field = d
		return nil
	}
}

// byteSize parses a size in bytes: a whole number, optionally with KiB, MiB
// or GiB.
func byteSize(field *int64) func(string) error {
	return func(v string) error {
		num, mult := v, int64(1)
		for i, suffix := range []string{"KiB", "MiB", "GiB"} {
			if n, ok := strings.CutSuffix(v, suffix); ok {
				num, mult = n, 1<<(10*(i+1))
			}
		}
		n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
		if err != nil || n < 0 || n > math.MaxInt64/mult {
			return errors.New("not a size (bytes, or a whole number of KiB, MiB or GiB, e.g. 4MiB)")
		}
		*field = n * mult
		return nil
	}
}

// bind makes a setting's parse of a field-pointer helper (dur, integer...):
// each writes into the Config its pointer came from.
func bind(f func(string) error) func(*Config, string) error {
	return func(_ *Config, v string) error { return f(v) }
}

func integer(field *int) func(string) error {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return errors.New("not an integer")
		}
		*field = n
		return nil
	}
}

func boolean(field *bool) func(string) error {
	return func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("not a boolean (true or false)")
		}
		*field = b
		return nil
	}
}

func str(field *string) func(string) error {
	return func(v string) error { *field = v; return nil }
}

func settings(c *Config) []setting {
	return append([]setting{
		{"token", "DISCORD_TOKEN", "", "bot token (prefer the environment: flags show in ps)", false,
			bind(func(v string) error { c.Token = NewSecret(v); return nil })},
		{"sim", "SIM", "false", "run against an in-process fake Discord: no token, no network", true, bind(boolean(&c.Sim))},
		{"sim-guilds", "SIM_GUILDS", "40", "-sim: guilds the fake serves", false, bind(integer(&c.SimGuilds))},
		{"sim-events-per-second", "SIM_EVENTS_PER_SECOND", "20", "-sim: MESSAGE_CREATE load of the fake", false,
			bind(func(v string) error {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return errors.New("not a number")
				}
				c.SimEventsPerSecond = f
				return nil
			})},
		{"redis-url", "REDIS_URL", "", "Redis to join a fleet; empty: local mode (see 'Redis URL forms')", false, bind(func(v string) error { c.RedisURL = RedisURL(v); return nil })},
		{"redis-cluster", "REDIS_CLUSTER", "false", "treat REDIS_URL as a Redis Cluster seed", true, bind(boolean(&c.RedisCluster))},
		{"redis-tls-ca-file", "REDIS_TLS_CA_FILE", "", "rediss: PEM file of the CA(s) to trust instead of the system's", false, bind(str(&c.RedisTLS.CAFile))},
		{"redis-tls-cert-file", "REDIS_TLS_CERT_FILE", "", "rediss: PEM client certificate to present (with REDIS_TLS_KEY_FILE)", false, bind(str(&c.RedisTLS.CertFile))},
		{"redis-tls-key-file", "REDIS_TLS_KEY_FILE", "", "rediss: PEM private key of REDIS_TLS_CERT_FILE", false, bind(str(&c.RedisTLS.KeyFile))},
		{"redis-tls-server-name", "REDIS_TLS_SERVER_NAME", "", "rediss: name to verify the server certificate against (default: the URL's host)", false, bind(str(&c.RedisTLS.ServerName))},
		{"key-prefix", "KEY_PREFIX", "{shardfleet}:", "prefix of every Redis key; wrapped in {} when it has no hash tag", false, bind(str(&c.KeyPrefix))},
		{"worker-id", "WORKER_ID", "", "this worker's ID (default: a random UUID)", false, bind(str(&c.WorkerID))},
		{"shard-count", "SHARD_COUNT", "0", "total shards; 0 asks Discord (GET /gateway/bot)", false, bind(integer(&c.ShardCount))},
		{"api-url", "DISCORD_API_URL", gateway.DefaultAPIURL, "Discord REST base", false, bind(str(&c.APIURL))},
		{"gateway-url", "GATEWAY_URL", "", "gateway URL; empty asks Discord", false, bind(str(&c.GatewayURL))},
		{"intents", "INTENTS", strconv.FormatInt(int64(gateway.IntentsNonPrivileged), 10), "gateway intents, as a decimal bit set", false,
			bind(func(v string) error {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return errors.New("not a decimal integer")
				}
				c.Intents = gateway.Intents(n)
				return nil
			})},
		{"compression", "COMPRESSION", "zlib-stream", "none, zlib-stream, zstd-stream or zlib-payload", false,
			bind(func(v string) error {
				switch v {
				case "none", "":
					c.Compression = gateway.CompressionNone
				case "zlib-stream", "zstd-stream", "zlib-payload":
					c.Compression = gateway.Compression(v)
				default:
					return errors.New("want none, zlib-stream, zstd-stream or zlib-payload")
				}
				return nil
			})},
		{"presence", "PRESENCE", "", `start-up presence, op 3's d as JSON (e.g. {"status":"online","activities":[{"name":"x","type":0}],"since":null,"afk":false}); in a fleet, the stored presence wins`, false,
			bind(func(v string) error {
				var p gateway.PresenceUpdate
				dec := json.NewDecoder(strings.NewReader(v))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&p); err != nil || p.Status == "" {
					return errors.New(`want op 3's d as JSON with a status, e.g. {"status":"online","activities":[],"since":null,"afk":false}`)
				}
				c.Presence = &p
				return nil
			})},
		{"gateway-send-window", "GATEWAY_SEND_WINDOW", "60s", "window of the gateway's 120-payload send limit (Discord's is 60s; shorter only against a fake)", false, bind(dur(&c.SendWindow))},
		{"ready-timeout", "READY_TIMEOUT", "2m", "reconnect when READY/RESUMED does not follow IDENTIFY/RESUME within this", false, bind(dur(&c.ReadyTimeout))},
		{"max-concurrency", "MAX_CONCURRENCY", "0", "identify buckets; 0 asks Discord", false, bind(integer(&c.MaxConcurrency))},
		{"identify-window", "IDENTIFY_WINDOW", "5s", "time between two IDENTIFYs of one bucket", false, bind(dur(&c.IdentifyWindow))},
		{"identify-margin", "IDENTIFY_MARGIN", "250ms", "safety margin added to the identify window", false, bind(dur(&c.IdentifyMargin))},
		{"identify-budget-reserve", "IDENTIFY_BUDGET_RESERVE", "10", "fleet mode: stop identifying when the daily session-start budget falls to this", false, bind(integer(&c.BudgetReserve))},
		{"partitions", "PARTITIONS", "0", "fleet mode: partitions of the fleet's keys, for Redis Cluster (16 spreads a fleet over up to 4-8 masters); 0 = the count the fleet stored (a new fleet: 16 on Redis Cluster, else 1); fixed when the fleet first starts", false, bind(integer(&c.Partitions))},
		{"lease-ttl", "LEASE_TTL", "15s", "fleet mode: lifetime of a worker's membership and leases", false, bind(dur(&c.LeaseTTL))},
		{"lease-renew-interval", "LEASE_RENEW_INTERVAL", "2s", "fleet mode: how often the membership is renewed", false, bind(dur(&c.LeaseRenewInterval))},
		{"lease-renew-deadline", "LEASE_RENEW_DEADLINE", "", "fleet mode: stop shards when no renew succeeded for this long (default 2/3 of LEASE_TTL; must be below 0.9 x LEASE_TTL)", false, bind(dur(&c.LeaseRenewDeadline))},
		{"event-stream-maxlen", "EVENT_STREAM_MAXLEN", "1000000", "approximate cap of the event stream (MAXLEN ~); 0 = uncapped", false,
			bind(func(v string) error {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return errors.New("not an integer")
				}
				c.EventStreamMaxLen = n
				return nil
			})},
		{"event-batch-size", "EVENT_BATCH_SIZE", "512", "most events per Redis script call", false, bind(integer(&c.EventBatchSize))},
		{"event-flush-interval", "EVENT_FLUSH_INTERVAL", "2ms", "how long a batch may wait to fill", false, bind(dur(&c.EventFlushInterval))},
		{"backlog-shard-bytes", "BACKLOG_SHARD_BYTES", "4MiB", "per shard: dispatches held for the handler, and again for Redis, before the shard stops reading and RESUMEs once drained", false, bind(byteSize(&c.BacklogShardBytes))},
		{"backlog-worker-bytes", "BACKLOG_WORKER_BYTES", "256MiB", "all shards: dispatches held for the handlers and Redis before shards stop reading", false, bind(byteSize(&c.BacklogWorkerBytes))},
		{"http-addr", "HTTP_ADDR", ":8080", "listen address of /metrics /healthz /readyz /status; empty: off", false, bind(str(&c.HTTPAddr))},
		{"http-max-conns", "HTTP_MAX_CONNS", "64", "most HTTP connections open at once; more are closed as soon as accepted", false, bind(integer(&c.HTTPMaxConns))},
		{"http-idle-timeout", "HTTP_IDLE_TIMEOUT", "60s", "close a keep-alive HTTP connection idle for this long", false, bind(dur(&c.HTTPIdleTimeout))},
		{"log-format", "LOG_FORMAT", "text", "text or json", false, bind(str(&c.LogFormat))},
		{"log-level", "LOG_LEVEL", "info", "debug, info, warn or error", false,
			bind(func(v string) error { return c.LogLevel.UnmarshalText([]byte(v)) })},
		{"shutdown-timeout", "SHUTDOWN_TIMEOUT", "10s", "bound on handing every shard off after SIGTERM", false, bind(dur(&c.ShutdownTimeout))},
		{"summary-interval", "SUMMARY_INTERVAL", "10s", "how often a summary line is logged; 0: never", false, bind(dur(&c.SummaryInterval))},
		{"events", "EVENTS", "none", "stdout: write every dispatch this worker receives to stdout as a JSON line (logs go to stderr); none: only count them (local mode) or store them in the Redis stream (fleet mode)", false, bind(str(&c.Events))},
	}, cacheSettings(c)...)
}

// ErrHelp is returned by parseConfig when -h was asked for.
var ErrHelp = flag.ErrHelp

// parseConfig builds a Config from args (without the program name) and the
// environment lookup env. Usage text goes to out.
func parseConfig(args []string, env func(string) (string, bool), out io.Writer) (*Config, error) {
	c := &Config{explicit: map[string]bool{}}
	table := settings(c)
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(out)
	fromFlag := map[string]string{}
	for _, s := range table {
		name := s.flag
		usage := fmt.Sprintf("%s (env %s", s.usage, s.env)
		if s.def != "" {
			usage += ", default " + s.def
		}
		usage += ")"
		if s.isBool {
			fs.BoolFunc(name, usage, func(v string) error { fromFlag[name] = v; return nil })
		} else {
			fs.Func(name, usage, func(v string) error { fromFlag[name] = v; return nil })
		}
	}
	fs.Usage = func() { usage(fs, out) }
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, gateway.NewSettingError("argument", fs.Arg(0), "unexpected: want flags only, or a subcommand first (status, send, cache)")
	}
	for _, s := range table {
		v, source := s.def, ""
		if e, ok := env(s.env); ok {
			v, source = e, s.env
		}
		if f, ok := fromFlag[s.flag]; ok {
			v, source = f, "-"+s.flag
		}
		if source != "" {
			c.explicit[s.env] = true
		}
		if v == "" && s.def == "" {
			continue
		}
		if err := s.parse(c, v); err != nil {
			if source == "" {
				source = s.env
			}
			shown := v
			if s.env == "DISCORD_TOKEN" {
				shown = ""
			}
			return nil, gateway.NewSettingError(source, shown, err.Error())
		}
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func usage(fs *flag.FlagSet, out io.Writer) {
	fmt.Fprint(out, `Usage:
  worker [flags]          run shards (local mode, or a fleet member when REDIS_URL is set)
  worker -sim             run offline against an in-process fake Discord
  worker status [flags]   print the fleet (workers, shards, status, latency, lease expiry) from Redis
  worker send [flags]     queue a gateway command (op 3, 4, 8) for the fleet and print its outcome
  worker cache dump|stats print the fleet's shared state cache as JSON, or its size per kind

Every flag has an environment variable; a flag given on the command line wins.

Redis URL forms (REDIS_URL):
  redis://[user:password@]host:6379[/db]            one server (ACL user and password)
  rediss://...                                      the same over TLS (REDIS_TLS_*: a private CA,
                                                    a client certificate, the name to verify)
  redis+sentinel://[user:pass@]s1:26379,s2:26379/?master_name=mymaster[&password=...]
                                                    Sentinel (user/pass are the sentinel's)
  redis+cluster://[user:pass@]n1:6379,n2:6379       Redis Cluster (rediss+cluster:// for TLS)
  redis://n1:6379,n2:6379 or REDIS_CLUSTER=true     also Redis Cluster

Flags:
`)
	fs.PrintDefaults()
}

var workerIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// validate checks the whole Config once, with errors naming the setting, and
// fills the derived defaults.
func (c *Config) validate() error {
	bad := func(setting, value, reason string) error {
		return gateway.NewSettingError(setting, value, reason)
	}
	if c.Token.IsZero() && !c.Sim {
		return bad("DISCORD_TOKEN (-token)", "", "required (or run with -sim for an offline fake)")
	}
	if strings.ContainsAny(c.Token.Reveal(), " \t\r\n") {
		return bad("DISCORD_TOKEN (-token)", "", "contains white space")
	}
	if c.Sim && (c.SimGuilds < 0 || c.SimEventsPerSecond < 0) {
		return bad("SIM_GUILDS / SIM_EVENTS_PER_SECOND", "", "must not be negative")
	}
	if c.ShardCount < 0 {
		return bad("SHARD_COUNT (-shard-count)", strconv.Itoa(c.ShardCount), "must be 0 (ask Discord) or more")
	}
	if c.Partitions < 0 || c.Partitions > keyspace.MaxPartitions {
		return bad("PARTITIONS (-partitions)", strconv.Itoa(c.Partitions),
			fmt.Sprintf("want 0 (the fleet's stored count) or 1 to %d; 16 for Redis Cluster", keyspace.MaxPartitions))
	}
	if err := checkURL(c.APIURL, "http", "https"); err != nil {
		return bad("DISCORD_API_URL (-api-url)", c.APIURL, err.Error())
	}
	if c.GatewayURL != "" {
		if err := checkURL(c.GatewayURL, "ws", "wss"); err != nil {
			return bad("GATEWAY_URL (-gateway-url)", c.GatewayURL, err.Error())
		}
	}
	if c.Intents < 0 || c.Intents&^gateway.IntentsAll != 0 {
		return bad("INTENTS (-intents)", strconv.FormatInt(int64(c.Intents), 10), "has bits Discord does not define")
	}
	if c.BudgetReserve < 0 {
		return bad("IDENTIFY_BUDGET_RESERVE (-identify-budget-reserve)", strconv.Itoa(c.BudgetReserve), "must not be negative")
	}
	if c.MaxConcurrency < 0 {
		return bad("MAX_CONCURRENCY (-max-concurrency)", strconv.Itoa(c.MaxConcurrency), "must be 0 (ask Discord) or more")
	}
	if c.WorkerID == "" {
		c.WorkerID = uuid.NewString()
	}
	if !workerIDPattern.MatchString(c.WorkerID) {
		return bad("WORKER_ID (-worker-id)", c.WorkerID, "want 1-64 of A-Z a-z 0-9 . _ -")
	}
	prefix, err := normalizePrefix(c.KeyPrefix)
	if err != nil {
		return bad("KEY_PREFIX (-key-prefix)", c.KeyPrefix, err.Error())
	}
	c.KeyPrefix = prefix
	if err := c.validateTimes(bad); err != nil {
		return err
	}
	if c.EventStreamMaxLen < 0 {
		return bad("EVENT_STREAM_MAXLEN (-event-stream-maxlen)", strconv.FormatInt(c.EventStreamMaxLen, 10), "must be 0 (uncapped) or more")
	}
	if c.EventBatchSize < 1 || c.EventBatchSize > 10000 {
		return bad("EVENT_BATCH_SIZE (-event-batch-size)", strconv.Itoa(c.EventBatchSize), "must be 1-10000")
	}
	if c.BacklogShardBytes < 64<<10 {
		return bad("BACKLOG_SHARD_BYTES (-backlog-shard-bytes)", strconv.FormatInt(c.BacklogShardBytes, 10), "must be at least 64KiB (a few large events)")
	}
	if c.BacklogWorkerBytes < c.BacklogShardBytes {
		return bad("BACKLOG_WORKER_BYTES (-backlog-worker-bytes)", strconv.FormatInt(c.BacklogWorkerBytes, 10),
			"must be at least BACKLOG_SHARD_BYTES ("+strconv.FormatInt(c.BacklogShardBytes, 10)+")")
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			return bad("HTTP_ADDR (-http-addr)", c.HTTPAddr, "want host:port or :port")
		}
	}
	if c.HTTPMaxConns < 1 {
		return bad("HTTP_MAX_CONNS (-http-max-conns)", strconv.Itoa(c.HTTPMaxConns), "must be 1 or more")
	}
	if c.Events != "none" && c.Events != "stdout" {
		return bad("EVENTS (-events)", c.Events, "want none or stdout")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return bad("LOG_FORMAT (-log-format)", c.LogFormat, "want text or json")
	}
	if err := c.validateCache(bad); err != nil {
		return err
	}
	if c.RedisURL != "" {
		if c.redis, err = newRedisTarget(c.RedisURL, c.RedisCluster, c.RedisTLS); err != nil {
			return err
		}
	} else if name, value := c.RedisTLS.firstSet(); name != "" {
		return bad(name, value, "set without REDIS_URL: want a rediss:// REDIS_URL too, or no REDIS_TLS_* setting")
	}
	return nil
}

func (c *Config) validateTimes(bad func(setting, value, reason string) error) error {
	type limit struct {
		name      string
		d         time.Duration
		zeroValid bool
	}
	for _, l := range []limit{
		{"IDENTIFY_WINDOW (-identify-window)", c.IdentifyWindow, false},
		{"IDENTIFY_MARGIN (-identify-margin)", c.IdentifyMargin, true},
		{"LEASE_TTL (-lease-ttl)", c.LeaseTTL, false},
		{"LEASE_RENEW_INTERVAL (-lease-renew-interval)", c.LeaseRenewInterval, false},
		{"LEASE_RENEW_DEADLINE (-lease-renew-deadline)", c.LeaseRenewDeadline, true}, // 0: derived
		{"READY_TIMEOUT (-ready-timeout)", c.ReadyTimeout, false},
		{"GATEWAY_SEND_WINDOW (-gateway-send-window)", c.SendWindow, false},
		{"SHUTDOWN_TIMEOUT (-shutdown-timeout)", c.ShutdownTimeout, false},
		{"EVENT_FLUSH_INTERVAL (-event-flush-interval)", c.EventFlushInterval, true},
		{"SUMMARY_INTERVAL (-summary-interval)", c.SummaryInterval, true},
		{"HTTP_IDLE_TIMEOUT (-http-idle-timeout)", c.HTTPIdleTimeout, false},
	} {
		if l.d < 0 || (l.d == 0 && !l.zeroValid) {
			return bad(l.name, l.d.String(), "must be positive")
		}
	}
	derived := c.LeaseRenewDeadline == 0
	if derived {
		c.LeaseRenewDeadline = c.LeaseTTL * 2 / 3
	}
	// Self-fencing needs TTL > renew deadline > 1.2 x renew interval, and the
	// deadline, measured on a local clock up to lease MaxClockDrift slow,
	// must still end before Redis expires the TTL (internal/lease Config).
	if drift := lease.DefaultConfig().MaxClockDrift; float64(c.LeaseTTL)*(1-drift) <= float64(c.LeaseRenewDeadline) {
		return bad("LEASE_RENEW_DEADLINE (-lease-renew-deadline)", c.LeaseRenewDeadline.String(),
			fmt.Sprintf("must be below LEASE_TTL x %v (%v), so that a worker whose clock runs %v%% slow still stops its shards before its lease expires",
				1-drift, time.Duration(float64(c.LeaseTTL)*(1-drift)), 100*drift))
	}
	if float64(c.LeaseRenewDeadline) <= 1.2*float64(c.LeaseRenewInterval) {
		return c.renewIntervalError(derived)
	}
	return nil
}

// renewIntervalError reports LEASE_RENEW_DEADLINE <= 1.2 x
// LEASE_RENEW_INTERVAL, blaming the settings the user set (LEASE_TTL=1s
// derives a deadline below the default interval: LEASE_TTL is the one to
// fix) and saying what would be valid for each.
func (c *Config) renewIntervalError(deadlineDerived bool) error {
	const (
		ttl, interval, deadline = "LEASE_TTL (-lease-ttl)", "LEASE_RENEW_INTERVAL (-lease-renew-interval)", "LEASE_RENEW_DEADLINE (-lease-renew-deadline)"
	)
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	deadlineFrom := "LEASE_RENEW_DEADLINE " + ms(c.LeaseRenewDeadline)
	if deadlineDerived {
		deadlineFrom += " (2/3 of LEASE_TTL " + c.LeaseTTL.String() + ")"
	}
	intervalFrom := "LEASE_RENEW_INTERVAL " + c.LeaseRenewInterval.String()
	if !c.isSet("LEASE_RENEW_INTERVAL") {
		intervalFrom += " (the default)"
	}
	minDeadline := time.Duration(1.2*float64(c.LeaseRenewInterval)) + time.Millisecond
	fixes := []string{"LEASE_RENEW_INTERVAL below " + ms(time.Duration(float64(c.LeaseRenewDeadline)/1.2))}
	setting, value := interval, c.LeaseRenewInterval.String()
	if deadlineDerived {
		fixes = append([]string{"LEASE_TTL to at least " + ms(minDeadline*3/2)}, fixes...)
		if c.isSet("LEASE_TTL") || !c.isSet("LEASE_RENEW_INTERVAL") {
			setting, value = ttl, c.LeaseTTL.String()
		}
	} else {
		fixes = append([]string{"LEASE_RENEW_DEADLINE to at least " + ms(minDeadline)}, fixes...)
		if !c.isSet("LEASE_RENEW_INTERVAL") {
			setting, value = deadline, c.LeaseRenewDeadline.String()
		}
	}
	return gateway.NewSettingError(setting, value, fmt.Sprintf(
		"the lease needs LEASE_RENEW_DEADLINE above 1.2 x LEASE_RENEW_INTERVAL, but %s and %s: set %s",
		deadlineFrom, intervalFrom, strings.Join(fixes, ", or ")))
}

func checkURL(raw string, schemes ...string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	for _, s := range schemes {
		if u.Scheme == s && u.Host != "" {
			return nil
		}
	}
	return fmt.Errorf("want a %s URL with a host", strings.Join(schemes, " or "))
}

// normalizePrefix rejects malformed hash tags, then applies the fleet's one
// prefix rule, keyspace.NormalizePrefix ("bot" and "bot:" become "{bot}:"),
// the rule pkg/redislimiter applies to WithKeyPrefix too.
func normalizePrefix(p string) (string, error) {
	open, closing := strings.Index(p, "{"), strings.Index(p, "}")
	switch {
	case p == "":
		return "", errors.New("must not be empty")
	case (open >= 0 || closing >= 0) && (open < 0 || closing < open+2):
		return "", errors.New("hash tag must look like {name}")
	case strings.Count(p, "{") > 1:
		return "", errors.New("more than one {hash tag}")
	}
	return keyspace.NormalizePrefix(p), nil
}

// redactURL hides a URL's password (Redis ACL or sentinel) for logs and errors.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparsable URL]"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	for _, k := range []string{"password", "sentinel_password"} {
		if q.Has(k) {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

// osEnv is the process environment as a lookup.
func osEnv(key string) (string, bool) { return os.LookupEnv(key) }
