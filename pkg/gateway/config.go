package gateway

import (
	"log/slog"
	"net/http"
	"runtime"
	"time"
)

// Config is a gateway's configuration. Build it with DefaultConfig and ConfigOpts;
// New validates it once.
type Config struct {
	// Logger receives the connection's logs, with shard_id attached. Default slog.Default().
	Logger *slog.Logger
	// URL is the gateway URL to IDENTIFY on. Empty: ask GET {APIURL}/gateway once.
	URL string
	// APIURL is the REST base (…/api/v10), used only to discover URL. Default DefaultAPIURL.
	APIURL string
	// HTTPClient is used for the websocket handshake and REST calls. Default http.DefaultClient.
	// When its transport is an *http.Transport that dials TCP itself (nil, or no Dial,
	// DialTLS or DialTLSContext), the handshake goes through a copy of it that wraps the
	// socket, which lets the read loop read ahead and wake the handler goroutine once per
	// socket read; with any other transport it wakes it once per event (slower, same order),
	// and an idle zlib-stream connection keeps its decoder (a 48 KiB buffer) instead of
	// releasing it after a few quiet seconds, as only the wrapped socket sees the quiet.
	HTTPClient *http.Client

	ShardID    int // default 0
	ShardCount int // default 1

	// Intents sent in IDENTIFY. Default IntentsNonPrivileged.
	Intents Intents
	// Compression. Default CompressionZlibStream.
	Compression Compression
	// LargeThreshold, 50-250. Default 50.
	LargeThreshold int
	// Presence sent in IDENTIFY, or nil.
	Presence *PresenceUpdate
	// PresenceSource, when set, is asked for IDENTIFY's presence before each
	// IDENTIFY; see config_presence.go.
	PresenceSource PresenceSource
	// OS, Browser and Device are IDENTIFY's properties. Defaults runtime.GOOS, "shardfleet", "shardfleet".
	OS, Browser, Device string

	// AutoReconnect retries retryable failures (in Open and after READY). Default true.
	AutoReconnect bool
	// ReconnectBackoffMin and ReconnectBackoffMax bound the capped exponential
	// backoff (with full jitter) between reconnect attempts. Defaults 1 s and 60 s.
	ReconnectBackoffMin time.Duration
	ReconnectBackoffMax time.Duration

	// State, when Resumable, makes the first connection RESUME instead of IDENTIFY.
	// It usually comes from storage (another process's Handoff), so it is
	// not trusted: an unusable ResumeURL is dropped (RESUME goes through the
	// gateway URL) and a negative Sequence drops the whole state (IDENTIFY),
	// each with a warning, instead of failing every Open.
	State ShardState

	// IdentifyLimiter paces every IDENTIFY. Default: none (no waiting).
	IdentifyLimiter IdentifyLimiter
	// CloseHandler is told when the shard stops for good. Default: none.
	CloseHandler CloseHandlerFunc

	// CommandsPerWindow, CommandWindow and ReservedCommands configure the send
	// limiter: Send may use CommandsPerWindow-ReservedCommands per CommandWindow;
	// heartbeat, identify and resume may use the rest. Defaults 120, 60 s, 3.
	// The limiter widens the window by a margin for the time a write takes
	// to arrive (send_limiter.go), so a saturated connection stays under
	// Discord's count.
	CommandsPerWindow int
	CommandWindow     time.Duration
	ReservedCommands  int

	// ReadLimit is the largest message the connection accepts (READY is large).
	// Default 64 MiB.
	ReadLimit int64

	// HelloTimeout bounds the dial and the wait for HELLO. Default 30 s.
	HelloTimeout time.Duration
	// ReadyTimeout bounds the wait for READY (after IDENTIFY) or RESUMED
	// (after RESUME), from the moment the command is written. A server that
	// keeps ACKing heartbeats but never answers would otherwise hold the
	// connection forever; past it the connection is closed with
	// CloseCodeReconnect and the run reconnects (RESUME if the session is
	// resumable, else IDENTIFY). Default 2 min (READY of a large bot can
	// take a while; GUILD_CREATEs come after it and are not waited for).
	ReadyTimeout time.Duration
	// CloseTimeout bounds the close handshake (a peer that does not answer
	// the close frame in time is cut off) and each websocket write. Default 5 s.
	CloseTimeout time.Duration

	// FrameFaultHook and UnreadableRetries: see config_frames.go.
	FrameFaultHook    FrameFaultHook
	UnreadableRetries int
	// BacklogBytes and BacklogBudget bound the dispatches queued for the
	// handler; see config_backlog.go. Default DefaultBacklogBytes, no budget.
	BacklogBytes  int64
	BacklogBudget *BacklogBudget
}

// ConfigOpt changes a Config.
type ConfigOpt func(*Config)

// DefaultConfig returns a Config with Discord-safe defaults.
func DefaultConfig() *Config {
	return &Config{
		Logger:              slog.Default(),
		APIURL:              DefaultAPIURL,
		HTTPClient:          http.DefaultClient,
		ShardID:             0,
		ShardCount:          1,
		Intents:             IntentsNonPrivileged,
		Compression:         CompressionZlibStream,
		LargeThreshold:      50,
		OS:                  runtime.GOOS,
		Browser:             "shardfleet",
		Device:              "shardfleet",
		AutoReconnect:       true,
		ReconnectBackoffMin: time.Second,
		ReconnectBackoffMax: 60 * time.Second,
		CommandsPerWindow:   120,
		CommandWindow:       60 * time.Second,
		ReservedCommands:    3,
		ReadLimit:           64 << 20,
		HelloTimeout:        30 * time.Second,
		ReadyTimeout:        2 * time.Minute,
		CloseTimeout:        5 * time.Second,
		UnreadableRetries:   DefaultUnreadableRetries,
		BacklogBytes:        DefaultBacklogBytes,
	}
}

// Apply applies opts in order.
func (c *Config) Apply(opts []ConfigOpt) {
	for _, opt := range opts {
		opt(c)
	}
}

// WithLogger sets the logger.
func WithLogger(logger *slog.Logger) ConfigOpt { return func(c *Config) { c.Logger = logger } }

// WithURL sets the gateway URL (ws:// or wss://) used to IDENTIFY.
func WithURL(url string) ConfigOpt { return func(c *Config) { c.URL = url } }

// WithAPIURL sets the REST base (e.g. "http://127.0.0.1:8080/api/v10").
func WithAPIURL(url string) ConfigOpt { return func(c *Config) { c.APIURL = url } }

// WithHTTPClient sets the HTTP client used for the websocket handshake and REST.
func WithHTTPClient(client *http.Client) ConfigOpt { return func(c *Config) { c.HTTPClient = client } }

// WithShardID sets the shard ID.
func WithShardID(id int) ConfigOpt { return func(c *Config) { c.ShardID = id } }

// WithShardCount sets the shard count.
func WithShardCount(count int) ConfigOpt { return func(c *Config) { c.ShardCount = count } }

// WithIntents sets the intents (replacing the default).
func WithIntents(intents Intents) ConfigOpt { return func(c *Config) { c.Intents = intents } }

// WithCompression sets the compression mode.
func WithCompression(compression Compression) ConfigOpt {
	return func(c *Config) { c.Compression = compression }
}

// WithLargeThreshold sets IDENTIFY's large_threshold (50-250).
func WithLargeThreshold(threshold int) ConfigOpt {
	return func(c *Config) { c.LargeThreshold = threshold }
}

// WithPresence sets the presence sent in IDENTIFY.
func WithPresence(presence PresenceUpdate) ConfigOpt {
	return func(c *Config) { c.Presence = &presence }
}

// WithOS sets IDENTIFY's properties.os.
func WithOS(os string) ConfigOpt { return func(c *Config) { c.OS = os } }

// WithBrowser sets IDENTIFY's properties.browser.
func WithBrowser(browser string) ConfigOpt { return func(c *Config) { c.Browser = browser } }

// WithDevice sets IDENTIFY's properties.device.
func WithDevice(device string) ConfigOpt { return func(c *Config) { c.Device = device } }

// WithAutoReconnect turns automatic reconnects on or off.
func WithAutoReconnect(autoReconnect bool) ConfigOpt {
	return func(c *Config) { c.AutoReconnect = autoReconnect }
}

// WithReconnectBackoff sets the bounds of the reconnect backoff.
func WithReconnectBackoff(minDelay, maxDelay time.Duration) ConfigOpt {
	return func(c *Config) { c.ReconnectBackoffMin, c.ReconnectBackoffMax = minDelay, maxDelay }
}

// WithShardState makes the first connection RESUME the given session (cold resume).
func WithShardState(state ShardState) ConfigOpt { return func(c *Config) { c.State = state } }

// WithIdentifyLimiter sets the limiter taken before every IDENTIFY.
func WithIdentifyLimiter(limiter IdentifyLimiter) ConfigOpt {
	return func(c *Config) { c.IdentifyLimiter = limiter }
}

// WithCloseHandler sets the handler told when the shard stops for good.
func WithCloseHandler(handler CloseHandlerFunc) ConfigOpt {
	return func(c *Config) { c.CloseHandler = handler }
}

// WithSendRateLimit configures the send limiter (Discord: 120 per 60 s).
func WithSendRateLimit(commands int, window time.Duration, reserved int) ConfigOpt {
	return func(c *Config) {
		c.CommandsPerWindow, c.CommandWindow, c.ReservedCommands = commands, window, reserved
	}
}

// WithReadLimit sets the largest message accepted from the server.
func WithReadLimit(limit int64) ConfigOpt { return func(c *Config) { c.ReadLimit = limit } }

// WithHelloTimeout bounds the dial and the wait for HELLO.
func WithHelloTimeout(d time.Duration) ConfigOpt { return func(c *Config) { c.HelloTimeout = d } }

// WithReadyTimeout bounds the wait for READY or RESUMED after IDENTIFY or RESUME.
func WithReadyTimeout(d time.Duration) ConfigOpt { return func(c *Config) { c.ReadyTimeout = d } }

// WithCloseTimeout bounds the close handshake.
func WithCloseTimeout(d time.Duration) ConfigOpt { return func(c *Config) { c.CloseTimeout = d } }
