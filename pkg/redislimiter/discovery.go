package redislimiter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// GatewayBot is the reply of GET /gateway/bot.
type GatewayBot struct {
	URL               string            `json:"url"`
	Shards            int               `json:"shards"`
	SessionStartLimit SessionStartLimit `json:"session_start_limit"`
}

// SessionStartLimit is the daily identify budget and the bot's max_concurrency.
type SessionStartLimit struct {
	Total          int `json:"total"`
	Remaining      int `json:"remaining"`
	ResetAfterMS   int `json:"reset_after"` // milliseconds
	MaxConcurrency int `json:"max_concurrency"`
}

// ResetAfter is ResetAfterMS as a duration.
func (s SessionStartLimit) ResetAfter() time.Duration {
	return time.Duration(s.ResetAfterMS) * time.Millisecond
}

// maxGatewayBotBody bounds what FetchGatewayBot reads (the real reply is ~150 B).
const maxGatewayBotBody = 64 << 10

// FetchGatewayBot reads GET {apiURL}/gateway/bot with "Authorization: Bot
// <token>". httpClient nil means http.DefaultClient. Errors never contain the
// token: a bad status is a *StatusError, a bad body wraps ErrDiscovery.
func FetchGatewayBot(ctx context.Context, httpClient *http.Client, apiURL, token string) (GatewayBot, error) {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	if token == "" {
		return GatewayBot{}, fmt.Errorf("%w: token is empty", ErrDiscovery)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(apiURL, "/")+"/gateway/bot", nil)
	if err != nil {
		return GatewayBot{}, fmt.Errorf("%w: apiURL: %w", ErrDiscovery, err)
	}
	req.Header.Set("Authorization", "Bot "+token)
	resp, err := httpClient.Do(req)
	if err != nil {
		return GatewayBot{}, fmt.Errorf("%w: %w", ErrDiscovery, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxGatewayBotBody))
		return GatewayBot{}, &StatusError{StatusCode: resp.StatusCode}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxGatewayBotBody+1))
	if err != nil {
		return GatewayBot{}, fmt.Errorf("%w: read body: %w", ErrDiscovery, err)
	}
	if len(body) > maxGatewayBotBody {
		return GatewayBot{}, fmt.Errorf("%w: body larger than %d bytes", ErrDiscovery, maxGatewayBotBody)
	}
	return ParseGatewayBot(body)
}

// ParseGatewayBot decodes and checks a /gateway/bot body.
func ParseGatewayBot(body []byte) (GatewayBot, error) {
	var g GatewayBot
	if err := json.Unmarshal(body, &g); err != nil {
		return GatewayBot{}, fmt.Errorf("%w: decode: %w", ErrDiscovery, err)
	}
	s := g.SessionStartLimit
	switch {
	case g.Shards < 1:
		return GatewayBot{}, fmt.Errorf("%w: shards %d must be >= 1", ErrDiscovery, g.Shards)
	case s.MaxConcurrency < 1:
		return GatewayBot{}, fmt.Errorf("%w: session_start_limit.max_concurrency %d must be >= 1", ErrDiscovery, s.MaxConcurrency)
	case s.Remaining < 0 || s.Total < 0:
		return GatewayBot{}, fmt.Errorf("%w: session_start_limit total/remaining must be >= 0", ErrDiscovery)
	case s.ResetAfterMS < 0:
		return GatewayBot{}, fmt.Errorf("%w: session_start_limit.reset_after %d must be >= 0", ErrDiscovery, s.ResetAfterMS)
	}
	return g, nil
}

// StoreMaxConcurrency stores max_concurrency for the fleet under keyPrefix
// (wrapped like Config.KeyPrefix; "" means DefaultKeyPrefix).
func StoreMaxConcurrency(ctx context.Context, client redis.UniversalClient, keyPrefix string, n int) error {
	if n < 1 {
		return fmt.Errorf("redislimiter: store max_concurrency: %d must be >= 1", n)
	}
	if err := client.Set(ctx, maxConcKey(prefixOrDefault(keyPrefix)), n, 0).Err(); err != nil {
		return fmt.Errorf("redislimiter: store max_concurrency: %w", err)
	}
	return nil
}

// LoadMaxConcurrency reads the value StoreMaxConcurrency stored, or returns
// ErrNoMaxConcurrency.
func LoadMaxConcurrency(ctx context.Context, client redis.UniversalClient, keyPrefix string) (int, error) {
	n, err := client.Get(ctx, maxConcKey(prefixOrDefault(keyPrefix))).Int()
	if errors.Is(err, redis.Nil) {
		return 0, ErrNoMaxConcurrency
	}
	if err != nil {
		return 0, fmt.Errorf("redislimiter: load max_concurrency: %w", err)
	}
	if n < 1 {
		return 0, fmt.Errorf("redislimiter: load max_concurrency: stored value %d must be >= 1", n)
	}
	return n, nil
}

func prefixOrDefault(p string) string {
	if p == "" {
		return DefaultKeyPrefix
	}
	return normalizePrefix(p)
}
