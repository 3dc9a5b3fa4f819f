package gatewaytest

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// Config configures a fake Discord. Every time is configurable; DefaultConfig
// documents every default. Listen and NewServer validate it once.
type Config struct {
	Token                  string          // accepted bot token; default "test-token"
	Shards                 int             // recommended shard count in /gateway/bot; default 1
	MaxConcurrency         int             // session_start_limit.max_concurrency; default 1
	SessionStartTotal      int             // session_start_limit.total; default 1000
	SessionStartResetAfter time.Duration   // session_start_limit.reset_after; default 24h
	IdentifyWindow         time.Duration   // per-key identify window; default 5s
	HeartbeatInterval      time.Duration   // HELLO's interval; default 41250ms
	HeartbeatTimeout       time.Duration   // close a silent client after this; default 1.5 x interval
	HeartbeatTimeoutCode   int             // close code for a late heartbeater; default 4009
	ResumeTimeout          time.Duration   // how long a dropped session stays resumable; default 2m
	Guilds                 int             // number of guilds the bot is in; default 0
	MaxGuildsPerShard      int             // more than this on one shard closes 4011; default 2500
	AllowedIntents         gateway.Intents // bits the bot may use (privileged ones must be here); default all documented
	ReplayBuffer           int             // dispatches kept per session for RESUME; default 10000
	SendLimit              int             // client commands per SendWindow; default 120
	SendWindow             time.Duration   // default 60s
	EventsPerSecond        float64         // steady MESSAGE_CREATE load spread over guilds; default 0
	Logger                 *slog.Logger    // default: discard

	// ShardCountMultiple, when above 1, acts out large-bot sharding: an
	// IDENTIFY whose shard count is not a multiple of it closes 4010. Default 0 (off).
	ShardCountMultiple int
	// RESTRateLimit is how many /gateway/bot requests per second are answered
	// before 429 (Discord's global limit is 50/s). Default 50; 0 or negative: no limit.
	RESTRateLimit int
	// WriteTimeout bounds one websocket write; a client that does not read for
	// this long is dropped. Default 10s.
	WriteTimeout time.Duration
	// QueueHighWater is how many messages may wait in one connection's send
	// queue before Dispatch waits for that connection to drain (backpressure for
	// producers faster than the client). Default 4096.
	QueueHighWater int
	// PayloadCompressThreshold: with IDENTIFY compress:true, READY, GUILD_CREATE
	// and every payload of at least this many bytes is zlib-compressed on its own
	// and sent as a binary frame; the rest go as text. Default 1024.
	PayloadCompressThreshold int
	// RequestMembersWindow: an all-members REQUEST_GUILD_MEMBERS (query "",
	// limit 0) for a guild sooner than this after the previous one gets a
	// RATE_LIMITED dispatch instead of members. Default 30s.
	RequestMembersWindow time.Duration
	// World sizes every guild's state (channels, roles, members...). The zero
	// World keeps guilds as small as they always were, at no cost.
	World World
	// MutationsPerSecond is a steady background of random world changes
	// (Mutate), each sent as the dispatches Discord would. Default 0.
	MutationsPerSecond float64
}

// World sizes the state of every guild, generated deterministically from
// Seed and the guild's number when a guild is first needed. Every guild has
// the @everyone role (id = guild id) and the text channel "general"; the
// counts add to that.
type World struct {
	Seed        uint64
	Channels    int // channels besides "general": categories, text and voice channels in turn
	Threads     int // active public threads in text channels
	Roles       int // roles besides @everyone
	Emojis      int
	Stickers    int
	Members     int
	VoiceStates int // members in voice channels: at most Members, and needs a voice channel (Channels >= 3)
	Presences   int // members with a presence: at most Members
	// Messages is how many messages per channel the state keeps (the last
	// ones), as a cache with that limit would; 0 keeps none.
	Messages int
}

// worldCount is one count of a World, by its field name.
type worldCount struct {
	p    *int
	name string
}

// counts names every count of w (for validation).
func (w *World) counts() []worldCount {
	return []worldCount{{&w.Channels, "Channels"}, {&w.Threads, "Threads"}, {&w.Roles, "Roles"}, {&w.Emojis, "Emojis"},
		{&w.Stickers, "Stickers"}, {&w.Members, "Members"}, {&w.VoiceStates, "VoiceStates"},
		{&w.Presences, "Presences"}, {&w.Messages, "Messages"}}
}

// generates reports whether guilds hold more than the default world.
func (w World) generates() bool {
	return w.Channels+w.Threads+w.Roles+w.Emojis+w.Stickers+w.Members > 0
}

// Option changes a Config.
type Option func(*Config)

// DefaultConfig returns the defaults: Discord's real values, except Guilds (0)
// and Token ("test-token").
func DefaultConfig() Config {
	return Config{
		Token:                    "test-token",
		Shards:                   1,
		MaxConcurrency:           1,
		SessionStartTotal:        1000,
		SessionStartResetAfter:   24 * time.Hour,
		IdentifyWindow:           5 * time.Second,
		HeartbeatInterval:        41250 * time.Millisecond,
		HeartbeatTimeout:         0, // 0: 1.5 x HeartbeatInterval, resolved in validate
		HeartbeatTimeoutCode:     gateway.CloseSessionTimedOut,
		ResumeTimeout:            2 * time.Minute,
		Guilds:                   0,
		MaxGuildsPerShard:        2500,
		AllowedIntents:           gateway.IntentsAll,
		ReplayBuffer:             10000,
		SendLimit:                120,
		SendWindow:               60 * time.Second,
		EventsPerSecond:          0,
		Logger:                   slog.New(slog.NewTextHandler(io.Discard, nil)),
		RESTRateLimit:            50,
		WriteTimeout:             10 * time.Second,
		QueueHighWater:           4096,
		PayloadCompressThreshold: 1024,
		RequestMembersWindow:     30 * time.Second,
	}
}

// WithConfig replaces the whole configuration (unset zero fields are NOT
// defaulted: start from DefaultConfig).
func WithConfig(c Config) Option { return func(dst *Config) { *dst = c } }

// WithToken sets the accepted bot token.
func WithToken(token string) Option { return func(c *Config) { c.Token = token } }

// WithShards sets the recommended shard count of /gateway/bot.
func WithShards(n int) Option { return func(c *Config) { c.Shards = n } }

// WithMaxConcurrency sets session_start_limit.max_concurrency (identify keys).
func WithMaxConcurrency(n int) Option { return func(c *Config) { c.MaxConcurrency = n } }

// WithSessionStartLimit sets session_start_limit.total and reset_after.
func WithSessionStartLimit(total int, resetAfter time.Duration) Option {
	return func(c *Config) { c.SessionStartTotal, c.SessionStartResetAfter = total, resetAfter }
}

// WithIdentifyWindow sets the per-key identify window.
func WithIdentifyWindow(d time.Duration) Option { return func(c *Config) { c.IdentifyWindow = d } }

// WithHeartbeatInterval sets HELLO's interval (and, unless set, the timeout: 1.5x).
func WithHeartbeatInterval(d time.Duration) Option {
	return func(c *Config) { c.HeartbeatInterval = d }
}

// WithHeartbeatTimeout sets how long a silent client may stay, and the close code it gets.
func WithHeartbeatTimeout(d time.Duration, code int) Option {
	return func(c *Config) { c.HeartbeatTimeout, c.HeartbeatTimeoutCode = d, code }
}

// WithResumeTimeout sets how long a dropped session stays resumable.
func WithResumeTimeout(d time.Duration) Option { return func(c *Config) { c.ResumeTimeout = d } }

// WithGuilds sets how many guilds the bot is in.
func WithGuilds(n int) Option { return func(c *Config) { c.Guilds = n } }

// WithMaxGuildsPerShard sets the 4011 threshold.
func WithMaxGuildsPerShard(n int) Option { return func(c *Config) { c.MaxGuildsPerShard = n } }

// WithAllowedIntents sets the intents the bot may use.
func WithAllowedIntents(i gateway.Intents) Option { return func(c *Config) { c.AllowedIntents = i } }

// WithReplayBuffer sets how many dispatches a session keeps for RESUME.
func WithReplayBuffer(n int) Option { return func(c *Config) { c.ReplayBuffer = n } }

// WithSendLimit sets the client send limit (4008 past it).
func WithSendLimit(n int, window time.Duration) Option {
	return func(c *Config) { c.SendLimit, c.SendWindow = n, window }
}

// WithEventsPerSecond starts a steady MESSAGE_CREATE load.
func WithEventsPerSecond(rate float64) Option { return func(c *Config) { c.EventsPerSecond = rate } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(c *Config) { c.Logger = l } }

// WithShardCountMultiple acts out large-bot sharding (4010 unless count % n == 0).
func WithShardCountMultiple(n int) Option { return func(c *Config) { c.ShardCountMultiple = n } }

// WithWorld sizes every guild's state (see World).
func WithWorld(w World) Option { return func(c *Config) { c.World = w } }

// WithMutationsPerSecond starts a steady background of random world changes.
func WithMutationsPerSecond(rate float64) Option {
	return func(c *Config) { c.MutationsPerSecond = rate }
}

// configCheck is one rule of validate: when bad, field is wrong for why.
type configCheck struct {
	bad   bool
	field string
	why   string
}

// validate checks c once and resolves derived defaults. The error names the field.
func (c *Config) validate() error {
	checks := []configCheck{
		{c.Token == "", "Token", "must not be empty"},
		{c.Shards < 1, "Shards", "must be at least 1"},
		{c.MaxConcurrency < 1, "MaxConcurrency", "must be at least 1"},
		{c.SessionStartTotal < 0, "SessionStartTotal", "must not be negative"},
		{c.SessionStartResetAfter <= 0, "SessionStartResetAfter", "must be positive"},
		{c.IdentifyWindow < 0, "IdentifyWindow", "must not be negative"},
		{c.HeartbeatInterval <= 0, "HeartbeatInterval", "must be positive"},
		{c.HeartbeatTimeout < 0, "HeartbeatTimeout", "must not be negative"},
		{c.HeartbeatTimeoutCode < 1000 || c.HeartbeatTimeoutCode > 4999, "HeartbeatTimeoutCode", "must be a close code in 1000-4999"},
		{c.ResumeTimeout < 0, "ResumeTimeout", "must not be negative"},
		{c.Guilds < 0 || c.Guilds > 1<<22, "Guilds", "must be in 0..4194304"},
		{c.MaxGuildsPerShard < 1, "MaxGuildsPerShard", "must be at least 1"},
		{c.AllowedIntents&^gateway.IntentsAll != 0, "AllowedIntents", "has undocumented bits"},
		{c.ReplayBuffer < 1, "ReplayBuffer", "must be at least 1"},
		{c.SendLimit < 1, "SendLimit", "must be at least 1"},
		{c.SendWindow <= 0, "SendWindow", "must be positive"},
		{c.EventsPerSecond < 0 || c.EventsPerSecond != c.EventsPerSecond, "EventsPerSecond", "must be a non-negative number"},
		{c.ShardCountMultiple < 0, "ShardCountMultiple", "must not be negative"},
		{c.WriteTimeout <= 0, "WriteTimeout", "must be positive"},
		{c.QueueHighWater < 1, "QueueHighWater", "must be at least 1"},
		{c.PayloadCompressThreshold < 0, "PayloadCompressThreshold", "must not be negative"},
		{c.RequestMembersWindow < 0, "RequestMembersWindow", "must not be negative"},
		{c.MutationsPerSecond < 0 || c.MutationsPerSecond != c.MutationsPerSecond, "MutationsPerSecond", "must be a non-negative number"},
	}
	for _, n := range c.World.counts() {
		checks = append(checks, configCheck{*n.p < 0 || *n.p > maxWorldCount, "World." + n.name, "must be in 0..100000"})
	}
	checks = append(checks,
		configCheck{c.World.VoiceStates > c.World.Members, "World.VoiceStates", "must be at most World.Members"},
		configCheck{c.World.VoiceStates > 0 && c.World.Channels < 3, "World.VoiceStates", "needs World.Channels >= 3 (a voice channel)"},
		configCheck{c.World.Presences > c.World.Members, "World.Presences", "must be at most World.Members"})
	for _, ch := range checks {
		if ch.bad {
			return &ConfigError{Package: "gatewaytest", Field: ch.field, Reason: ch.why}
		}
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = c.HeartbeatInterval * 3 / 2
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

// GoString is String: %#v must not print the token either.
func (c Config) GoString() string { return c.String() }

// String describes the config without the token.
func (c Config) String() string {
	return fmt.Sprintf("gatewaytest.Config{Shards:%d MaxConcurrency:%d Guilds:%d IdentifyWindow:%s HeartbeatInterval:%s}",
		c.Shards, c.MaxConcurrency, c.Guilds, c.IdentifyWindow, c.HeartbeatInterval)
}
