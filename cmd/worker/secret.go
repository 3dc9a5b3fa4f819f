package main

import (
	"log/slog"
)

// redacted is what a Secret prints as, whatever its value.
const redacted = "[redacted]"

// Secret holds the bot token. Every way of printing it (fmt, slog, JSON) gives
// "[redacted]", so a config dump or an error that carries the Config cannot leak
// it; only Reveal returns the value, for the one place that sends it to Discord.
type Secret struct{ value string }

// NewSecret wraps a token.
func NewSecret(value string) Secret { return Secret{value: value} }

// Reveal returns the token. Call it only to hand the token to the gateway.
func (s Secret) Reveal() string { return s.value }

// IsZero reports whether no token is set.
func (s Secret) IsZero() bool { return s.value == "" }

// String implements fmt.Stringer.
func (s Secret) String() string { return redacted }

// GoString implements fmt.GoStringer (%#v).
func (s Secret) GoString() string { return redacted }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler (used by text encoders and map keys).
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// RedisURL is REDIS_URL. It prints with its password masked, since an ACL
// password is as secret as the bot token.
type RedisURL string

// String implements fmt.Stringer.
func (u RedisURL) String() string { return redactURL(string(u)) }

// GoString implements fmt.GoStringer (%#v).
func (u RedisURL) GoString() string { return u.String() }

// LogValue implements slog.LogValuer.
func (u RedisURL) LogValue() slog.Value { return slog.StringValue(u.String()) }

// MarshalText implements encoding.TextMarshaler (JSON uses it too).
func (u RedisURL) MarshalText() ([]byte, error) { return []byte(u.String()), nil }
