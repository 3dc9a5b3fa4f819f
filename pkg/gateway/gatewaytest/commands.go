package gatewaytest

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/disgoorg/snowflake/v2"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// requestMembers is REQUEST_GUILD_MEMBERS's d (§7).
type requestMembers struct {
	GuildID   snowflake.ID    `json:"guild_id"`
	Query     *string         `json:"query"`
	Limit     *int            `json:"limit"`
	Presences bool            `json:"presences"`
	UserIDs   json.RawMessage `json:"user_ids"`
	Nonce     string          `json:"nonce"`
}

// membersPerChunk is Discord's chunk size.
const membersPerChunk = 1000

// handleRequestGuildMembers answers op 8 from the world's members: by
// user_ids (the others in not_found), or those whose username or nick
// starts with query (case-insensitive; limit 0 with query "": all), in
// GUILD_MEMBERS_CHUNKs of up to 1000, with their presences if asked. A
// guild the bot is not in gets one empty chunk. An all-members request
// within RequestMembersWindow of the previous one for the guild gets
// RATE_LIMITED (the connection stays open). A payload without guild_id, or
// without query or user_ids, or a nonce over 32 bytes is 4001.
func (s *Server) handleRequestGuildMembers(c *conn, d json.RawMessage) *ProtocolError {
	var req requestMembers
	if err := json.Unmarshal(d, &req); err != nil || req.GuildID == 0 ||
		(req.Query == nil && len(req.UserIDs) == 0) || len(req.Nonce) > 32 {
		return protoErr(gateway.CloseUnknownOpcode, "request guild members: invalid payload")
	}
	userIDs, ok := decodeUserIDs(req.UserIDs)
	if !ok {
		return protoErr(gateway.CloseUnknownOpcode, "request guild members: invalid user_ids")
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
	members, notFound := s.requestedMembers(req, userIDs)
	count := max(1, (len(members)+membersPerChunk-1)/membersPerChunk)
	for i := range count {
		chunk := members[min(i*membersPerChunk, len(members)):min((i+1)*membersPerChunk, len(members))]
		b := []byte(`{"guild_id":`)
		b = append(b, gid...)
		b = append(b, `,"members":`...)
		b = appendJSON(b, nonNil(chunk))
		b = append(b, `,"chunk_index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"chunk_count":`...)
		b = strconv.AppendInt(b, int64(count), 10)
		b = append(b, `,"not_found":`...)
		b = appendJSON(b, nonNil(notFound))
		if req.Presences {
			b = append(b, `,"presences":`...)
			b = appendJSON(b, s.presencesOf(req.GuildID, chunk))
		}
		b = append(b, `,"nonce":`...)
		b = append(b, nonce...)
		s.dispatchToSession(ss, jsonString("GUILD_MEMBERS_CHUNK"), append(b, '}'))
	}
	return nil
}

// decodeUserIDs reads user_ids: absent, one id, or a list of ids.
func decodeUserIDs(raw json.RawMessage) ([]snowflake.ID, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, true
	}
	var one snowflake.ID
	if json.Unmarshal(raw, &one) == nil {
		return []snowflake.ID{one}, true
	}
	var list []snowflake.ID
	return list, json.Unmarshal(raw, &list) == nil
}

// requestedMembers lists the members op 8 asked for, by user id (and the
// ids not found) or by query and limit. Needs s.mu.
func (s *Server) requestedMembers(req requestMembers, userIDs []snowflake.ID) ([]Object, []string) {
	gs, _, err := s.worldGuild(req.GuildID)
	if err != nil || gs.Unavailable {
		return nil, nil
	}
	var out []Object
	if userIDs != nil {
		var notFound []string
		for _, id := range userIDs {
			if m := gs.Members[id.String()]; m != nil {
				out = append(out, m)
			} else {
				notFound = append(notFound, id.String())
			}
		}
		return out, notFound
	}
	query := strings.ToLower(*req.Query)
	limit := 0
	if req.Limit != nil {
		limit = *req.Limit
	}
	for _, x := range sortedValues(gs.Members) {
		if limit > 0 && len(out) == limit {
			break
		}
		m := x.(Object)
		user, _ := m["user"].(map[string]any)
		name, _ := user["username"].(string)
		nick, _ := m["nick"].(string)
		if strings.HasPrefix(strings.ToLower(name), query) || (nick != "" && strings.HasPrefix(strings.ToLower(nick), query)) {
			out = append(out, m)
		}
	}
	return out, nil
}

// presencesOf lists the presences of members. Needs s.mu.
func (s *Server) presencesOf(g snowflake.ID, members []Object) []Object {
	out := []Object{}
	gs := s.world.Guilds[g.String()]
	if gs == nil {
		return out
	}
	for _, m := range members {
		if p := gs.Presences[userIDOf(m)]; p != nil {
			out = append(out, p)
		}
	}
	return out
}

// appendJSON appends v (decoded JSON values only) as JSON.
func appendJSON(b []byte, v any) []byte {
	j, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("gatewaytest: decoded JSON does not marshal: %v", err))
	}
	return append(b, j...)
}
