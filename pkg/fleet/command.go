package fleet

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/disgoorg/snowflake/v2"

	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// MaxNonceBytes is Discord's bound on op 8's nonce.
const MaxNonceBytes = 32

// Command is one gateway command: op and its d, as Discord documents them.
type Command struct {
	Op gateway.Opcode
	D  json.RawMessage
	// Deadline, when set, is when the command stops being worth sending (a
	// voice join a minute late is useless): past it, it is dropped and its
	// outcome is expired. Send queues it on the Redis server's clock (by the
	// offset of this machine's clock to it), which the workers compare with.
	Deadline time.Time
}

// ShardKey names a shard: ID of a bot sharded Count ways.
type ShardKey = keyspace.ShardKey

// Target says where a command goes: a guild's shard (through the fleet's
// layout, so mixed counts after a split route right), one shard, or every
// shard of the fleet. The zero Target routes op 4 and op 8 by their d's
// guild_id.
type Target struct {
	Guild uint64    // 0: not guild-addressed
	Shard *ShardKey // nil: not shard-addressed
	All   bool
}

// ToGuild addresses the shard serving guild.
func ToGuild(guild uint64) Target { return Target{Guild: guild} }

// ToShard addresses one shard.
func ToShard(id, count int) Target { return Target{Shard: &ShardKey{ID: id, Count: count}} }

// ToAll addresses every shard of the fleet.
func ToAll() Target { return Target{All: true} }

// Outcome states.
const (
	StateSent     = "sent"
	StateExpired  = "expired"
	StateRejected = "rejected"
)

// Outcome is what became of a command (docs/commands.md, "Outcomes").
type Outcome struct {
	ID      string `json:"id"`
	State   string `json:"state"` // StateSent, StateExpired or StateRejected
	Shard   int    `json:"shard"`
	Count   int    `json:"count"`
	Session string `json:"session,omitempty"` // sent: the Discord session it went out on
	At      int64  `json:"at"`                // when, in Unix ms of the Redis server's clock
	Reason  string `json:"reason,omitempty"`  // rejected: why
}

// Time is At as a time.Time.
func (o Outcome) Time() time.Time { return time.UnixMilli(o.At) }

// RejectedError is a command that is not valid: it never reaches Discord.
type RejectedError struct{ Reason string }

func (e *RejectedError) Error() string { return "fleet: command rejected: " + e.Reason }

func rejected(format string, args ...any) error {
	return &RejectedError{Reason: fmt.Sprintf(format, args...)}
}

// commandFields is the d of op 4 and op 8 as far as validation reads it.
type commandFields struct {
	GuildID json.RawMessage `json:"guild_id"`
	Query   *string         `json:"query"`
	UserIDs json.RawMessage `json:"user_ids"`
	Nonce   *string         `json:"nonce"`
}

// Validate checks a command the way the workers do before sending it: op 3,
// 4 or 8; d a JSON object; the payload {"op":N,"d":...} at most
// gateway.MaxPayloadSize bytes; op 4 and 8 with a guild_id; op 8 with query
// or user_ids and a nonce of at most MaxNonceBytes. A failure is a
// *RejectedError. It returns the guild_id of op 4 and 8 (0 for op 3).
func Validate(op gateway.Opcode, d json.RawMessage) (guild uint64, err error) {
	switch op {
	case gateway.OpPresenceUpdate, gateway.OpVoiceStateUpdate, gateway.OpRequestGuildMembers:
	default:
		return 0, rejected("unknown op %d (want 3, 4 or 8)", op)
	}
	if n := len(`{"op":0,"d":}`) + len(d); n > gateway.MaxPayloadSize {
		return 0, rejected("payload of %d bytes, over %d", n, gateway.MaxPayloadSize)
	}
	var f commandFields
	if len(d) == 0 || d[0] != '{' || json.Unmarshal(d, &f) != nil {
		return 0, rejected("d is not a JSON object")
	}
	if op == gateway.OpPresenceUpdate {
		return 0, nil
	}
	guild, ok := parseSnowflake(f.GuildID)
	if !ok {
		return 0, rejected("op %d needs guild_id (a snowflake)", op)
	}
	if op == gateway.OpRequestGuildMembers {
		if f.Query == nil && (len(f.UserIDs) == 0 || string(f.UserIDs) == "null") {
			return 0, rejected("op 8 needs query or user_ids")
		}
		if f.Nonce != nil && len(*f.Nonce) > MaxNonceBytes {
			return 0, rejected("nonce of %d bytes, over %d", len(*f.Nonce), MaxNonceBytes)
		}
	}
	return guild, nil
}

// OnShard reports whether Discord serves guild on shard k: (guild >> 22) %
// k.Count == k.ID. Op 4 and op 8 for a guild of another shard are rejected.
func OnShard(guild uint64, k ShardKey) bool { return k.Owns(snowflake.ID(guild)) }

// parseSnowflake reads a snowflake sent as a string or a number; 0 is none.
func parseSnowflake(raw json.RawMessage) (uint64, bool) {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		s = string(raw)
	}
	id, err := strconv.ParseUint(s, 10, 64)
	return id, err == nil && id != 0
}
