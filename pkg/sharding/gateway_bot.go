package sharding

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// GatewayBot is the answer of GET /gateway/bot.
type GatewayBot struct {
	URL               string            `json:"url"`
	Shards            int               `json:"shards"`
	SessionStartLimit SessionStartLimit `json:"session_start_limit"`
}

// SessionStartLimit is the bot's daily identify budget.
type SessionStartLimit struct {
	Total          int `json:"total"`
	Remaining      int `json:"remaining"`
	ResetAfter     int `json:"reset_after"` // milliseconds
	MaxConcurrency int `json:"max_concurrency"`
}

// ResetAfterDuration is ResetAfter as a time.Duration.
func (l SessionStartLimit) ResetAfterDuration() time.Duration {
	return time.Duration(l.ResetAfter) * time.Millisecond
}

// maxGatewayBotBody bounds what is read of an answer.
const maxGatewayBotBody = 1 << 20

// FetchGatewayBot asks GET {apiURL}/gateway/bot with the bot token. Errors never
// hold the token: a non-200 answer is a *GatewayBotError (ErrUnauthorized on 401),
// an answer without a usable shard count or max_concurrency names the field.
func FetchGatewayBot(ctx context.Context, client *http.Client, apiURL, token string) (GatewayBot, error) {
	var gb GatewayBot
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(apiURL, "/")+"/gateway/bot", nil)
	if err != nil {
		return gb, fmt.Errorf("gateway/bot request: %w", err)
	}
	req.Header.Set("Authorization", "Bot "+token)
	req.Header.Set("User-Agent", gateway.UserAgent)
	resp, err := client.Do(req)
	if err != nil {
		return gb, fmt.Errorf("gateway/bot: %w", scrubToken(err, token))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxGatewayBotBody))
	if err != nil {
		return gb, fmt.Errorf("gateway/bot read body: %w", scrubToken(err, token))
	}
	return parseGatewayBot(resp.StatusCode, body, token)
}

// parseGatewayBot reads an answer of GET /gateway/bot (untrusted input: it
// never panics, and its errors never hold the token).
func parseGatewayBot(status int, body []byte, token string) (GatewayBot, error) {
	var gb GatewayBot
	if status != http.StatusOK {
		return gb, gatewayBotStatusError(status, body, token)
	}
	if err := json.Unmarshal(body, &gb); err != nil {
		return GatewayBot{}, fmt.Errorf("gateway/bot decode: %w", scrubToken(err, token))
	}
	switch {
	case gb.Shards < 1:
		return gb, fmt.Errorf("gateway/bot: field shards is %d, want >= 1", gb.Shards)
	case gb.SessionStartLimit.MaxConcurrency < 1:
		return gb, fmt.Errorf("gateway/bot: field session_start_limit.max_concurrency is %d, want >= 1",
			gb.SessionStartLimit.MaxConcurrency)
	case gb.SessionStartLimit.Total < 0, gb.SessionStartLimit.Remaining < 0, gb.SessionStartLimit.ResetAfter < 0:
		return gb, fmt.Errorf("gateway/bot: fields session_start_limit.total, remaining and reset_after must be >= 0, got %+v",
			gb.SessionStartLimit)
	}
	return gb, nil
}

func gatewayBotStatusError(status int, body []byte, token string) error {
	var payload struct {
		Message    string  `json:"message"`
		RetryAfter float64 `json:"retry_after"`
	}
	e := &GatewayBotError{StatusCode: status}
	if json.Unmarshal(body, &payload) == nil {
		e.Message, e.RetryAfter = payload.Message, payload.RetryAfter
	} else {
		e.Message = string(body)
	}
	// Scrub before cutting, so no part of the token survives the cut.
	if token != "" {
		e.Message = strings.ReplaceAll(e.Message, token, "[token]")
	}
	if len(e.Message) > 200 {
		e.Message = strings.ToValidUTF8(e.Message[:200], "") + "…"
	}
	if status == http.StatusUnauthorized {
		e.Err = ErrUnauthorized
	}
	return e
}

// scrubToken keeps the token out of a transport error (URLs may echo headers
// in some proxies' messages); the error's chain is kept.
func scrubToken(err error, token string) error {
	if token == "" || !strings.Contains(err.Error(), token) {
		return err
	}
	return &scrubbedError{msg: strings.ReplaceAll(err.Error(), token, "[token]"), err: err}
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }
