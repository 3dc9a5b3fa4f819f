package gatewaytest

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// CommandRecord is one command (op 3, 4, 8 or another non-lifecycle op) the
// fake received on an authenticated connection, before its own checks: tests
// assert what a bot sent, valid or not.
type CommandRecord struct {
	Time       time.Time       `json:"time"`
	Op         gateway.Opcode  `json:"op"`
	ShardID    int             `json:"shard_id"`
	ShardCount int             `json:"shard_count"`
	SessionID  string          `json:"session_id"`
	D          json.RawMessage `json:"d"`
}

// recordCommand appends f to the command log when c has a session.
func (s *Server) recordCommand(c *conn, f clientFrame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := c.sess
	if ss == nil {
		return
	}
	s.commands = append(s.commands, CommandRecord{Time: time.Now(), Op: f.Op, ShardID: ss.shardID,
		ShardCount: ss.shardCount, SessionID: ss.id, D: bytes.Clone(f.D)})
}

// Commands returns every command received, oldest first.
func (s *Server) Commands() []CommandRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]CommandRecord(nil), s.commands...)
}

// presenceOrNil keeps IDENTIFY's presence unless it is absent or null.
func presenceOrNil(p json.RawMessage) json.RawMessage {
	if len(p) == 0 || string(p) == "null" {
		return nil
	}
	return bytes.Clone(p)
}
