package gatewaytest

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/disgoorg/snowflake/v2"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// requestMembers is REQUEST_GUILD_MEMBERS's d (§7).
type requestMembers struct {
	GuildID snowflake.ID    `json:"guild_id"`
	Query   *string         `json:"query"`
	Limit   *int            `json:"limit"`
	UserIDs json.RawMessage `json:"user_ids"`
	Nonce   string          `json:"nonce"`
}

// handleRequestGuildMembers answers op 8: the fake's guilds have no members
// but the bot, so the answer is one empty GUILD_MEMBERS_CHUNK. An all-members
// request within RequestMembersWindow of the previous one for the guild gets
// RATE_LIMITED (the connection stays open). A payload without guild_id, or
// without query or user_ids, or a nonce over 32 bytes is 4001.
func (s *Server) handleRequestGuildMembers(c *conn, d json.RawMessage) *ProtocolError {
	var req requestMembers
	if err := json.Unmarshal(d, &req); err != nil || req.GuildID == 0 ||
		(req.Query == nil && len(req.UserIDs) == 0) || len(req.Nonce) > 32 {
		return protoErr(gateway.CloseUnknownOpcode, "request guild members: invalid payload")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := c.sess
	if ss == nil {
		return protoErr(gateway.CloseNotAuthenticated, "not authenticated")
	}
	nonce := jsonString(req.Nonce)
	gid := appendID(nil, req.GuildID)
	if req.Query != nil && *req.Query == "" && req.Limit != nil && *req.Limit == 0 {
		now := time.Now()
		if last, ok := s.rgmLast[req.GuildID]; ok && now.Sub(last) < s.cfg.RequestMembersWindow {
			retry := (s.cfg.RequestMembersWindow - now.Sub(last)).Seconds()
			b := []byte(`{"opcode":8,"retry_after":`)
			b = strconv.AppendFloat(b, retry, 'f', 3, 64)
			b = append(b, `,"meta":{"guild_id":`...)
			b = append(b, gid...)
			b = append(b, `,"nonce":`...)
			b = append(b, nonce...)
			s.dispatchToSession(ss, jsonString("RATE_LIMITED"), append(b, `}}`...))
			return nil
		}
		s.rgmLast[req.GuildID] = now
	}
	b := []byte(`{"guild_id":`)
	b = append(b, gid...)
	b = append(b, `,"members":[],"chunk_index":0,"chunk_count":1,"not_found":[],"nonce":`...)
	b = append(b, nonce...)
	s.dispatchToSession(ss, jsonString("GUILD_MEMBERS_CHUNK"), append(b, '}'))
	return nil
}
