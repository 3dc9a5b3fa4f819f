package gateway

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
)

// validate checks the configuration once, in New. The error names the field
// and never holds the token.
func (c *Config) validate(token string) error {
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Package: "gateway", Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case token == "":
		return bad("token", "empty")
	case c.Logger == nil:
		return bad("Logger", "nil")
	case c.HTTPClient == nil:
		return bad("HTTPClient", "nil")
	case c.ShardCount < 1:
		return bad("ShardCount", "%d is below 1", c.ShardCount)
	case c.ShardID < 0 || c.ShardID >= c.ShardCount:
		return bad("ShardID", "%d is not in [0, ShardCount=%d)", c.ShardID, c.ShardCount)
	case c.Intents < 0:
		return bad("Intents", "negative")
	case c.LargeThreshold < 50 || c.LargeThreshold > 250:
		return bad("LargeThreshold", "%d is not in [50, 250]", c.LargeThreshold)
	case c.ReconnectBackoffMin <= 0:
		return bad("ReconnectBackoffMin", "%s is not positive", c.ReconnectBackoffMin)
	case c.ReconnectBackoffMax < c.ReconnectBackoffMin:
		return bad("ReconnectBackoffMax", "%s is below ReconnectBackoffMin %s", c.ReconnectBackoffMax, c.ReconnectBackoffMin)
	case c.CommandsPerWindow < 1:
		return bad("CommandsPerWindow", "%d is below 1", c.CommandsPerWindow)
	case c.CommandWindow <= 0:
		return bad("CommandWindow", "%s is not positive", c.CommandWindow)
	case c.ReservedCommands < 0 || c.ReservedCommands >= c.CommandsPerWindow:
		return bad("ReservedCommands", "%d is not in [0, CommandsPerWindow=%d)", c.ReservedCommands, c.CommandsPerWindow)
	case c.ReadLimit != -1 && c.ReadLimit < MaxPayloadSize:
		return bad("ReadLimit", "%d is below %d (use -1 for no limit)", c.ReadLimit, MaxPayloadSize)
	case c.HelloTimeout <= 0:
		return bad("HelloTimeout", "%s is not positive", c.HelloTimeout)
	case c.ReadyTimeout <= 0:
		return bad("ReadyTimeout", "%s is not positive", c.ReadyTimeout)
	case c.CloseTimeout <= 0:
		return bad("CloseTimeout", "%s is not positive", c.CloseTimeout)
	}
	if err := c.validateURLs(); err != nil {
		return err
	}
	return c.validateIdentify(token)
}

func (c *Config) validateURLs() error {
	switch c.Compression {
	case CompressionNone, CompressionZlibStream, CompressionZstdStream, CompressionZlibPayload:
	default:
		return &ConfigError{Package: "gateway", Field: "Compression", Reason: fmt.Sprintf("unknown mode %q", c.Compression)}
	}
	if c.URL != "" {
		if _, err := withGatewayQuery(c.URL, c.Compression); err != nil {
			return &ConfigError{Package: "gateway", Field: "URL", Reason: err.Error()}
		}
	} else {
		u, err := url.Parse(c.APIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &ConfigError{Package: "gateway", Field: "APIURL", Reason: fmt.Sprintf("%q is not an http(s) URL", c.APIURL)}
		}
	}
	return nil
}

// validateIdentify checks that IDENTIFY fits Discord's 4096 bytes, so a large
// presence fails here instead of on every connection.
func (c *Config) validateIdentify(token string) error {
	d := identifyData{Token: token, Intents: c.Intents, LargeThreshold: c.LargeThreshold,
		Properties: identifyProperties{OS: c.OS, Browser: c.Browser, Device: c.Device},
		Shard:      [2]int{c.ShardID, c.ShardCount}, Presence: c.Presence, Compress: true}
	b, err := json.Marshal(outgoing{Op: OpIdentify, D: d})
	if err != nil {
		return &ConfigError{Package: "gateway", Field: "Presence", Reason: "cannot be encoded as JSON"}
	}
	if len(b) > MaxPayloadSize {
		return &ConfigError{Package: "gateway", Field: "Presence", Reason: fmt.Sprintf("IDENTIFY would be %d bytes, over %d", len(b), MaxPayloadSize)}
	}
	return nil
}

// sanitizeState makes a stored session safe to use: State comes from Redis or
// another process, so bad fields cost a RESUME path or the session, never
// every Open. It logs what it dropped (never the token; the URL is redacted).
func sanitizeState(st ShardState, c Compression, log *slog.Logger) ShardState {
	if st.Sequence < 0 {
		log.Warn("stored session has a negative seq: identifying instead of resuming",
			slog.Int("seq", st.Sequence))
		return ShardState{}
	}
	if st.ResumeURL != "" {
		if _, err := withGatewayQuery(st.ResumeURL, c); err != nil {
			log.Warn("stored resume URL is unusable: resuming through the gateway URL",
				slog.String("resume_url", redactURL(st.ResumeURL)), slog.Any("error", err))
			st.ResumeURL = ""
		}
	}
	return st
}
