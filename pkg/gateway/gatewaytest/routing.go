package gatewaytest

import (
	"encoding/json"
	"time"

	"github.com/disgoorg/snowflake/v2"
)

// guildEpochMs is the first guild's (id >> 22): milliseconds since Discord's
// epoch (about 2024). Guild i has timestamp guildEpochMs+i, so (id>>22) % n
// spreads the guilds evenly over the shards of any count n.
const guildEpochMs = 283_000_000_000

var (
	typReady       = jsonString("READY")
	typResumed     = jsonString("RESUMED")
	typGuildCreate = jsonString("GUILD_CREATE")
	typGuildDelete = jsonString("GUILD_DELETE")
)

func makeGuilds(n int) []snowflake.ID {
	ids := make([]snowflake.ID, n)
	for i := range ids {
		ids[i] = snowflake.ID(uint64(guildEpochMs+i)<<22 | uint64(i%4096))
	}
	return ids
}

// shardOf is Discord's routing: (guild_id >> 22) % count; guild-less events go to shard 0.
func shardOf(g snowflake.ID, count int) int {
	if g == 0 {
		return 0
	}
	return int((uint64(g) >> 22) % uint64(count))
}

// guildAt is guild number i: one of the initial guilds, then the added ones.
// Needs s.mu for an added guild.
func (s *Server) guildAt(i int) snowflake.ID {
	if i < len(s.guilds) {
		return s.guilds[i]
	}
	return s.added[i-len(s.guilds)]
}

// guildsOf lists the guilds (index, as guildAt takes it) that route to
// (shardID, count). Needs s.mu.
func (s *Server) guildsOf(shardID, count int) []int {
	var out []int
	for i, g := range s.guilds {
		if shardOf(g, count) == shardID && !s.left[g] {
			out = append(out, i)
		}
	}
	for i, g := range s.added {
		if shardOf(g, count) == shardID && !s.left[g] {
			out = append(out, len(s.guilds)+i)
		}
	}
	return out
}

// guildsOnShard counts the guilds of (shardID, count) without listing the
// initial ones. Needs s.mu.
func (s *Server) guildsOnShard(shardID, count int) int {
	on := 0
	for _, g := range s.added {
		if shardOf(g, count) == shardID {
			on++
		}
	}
	for g := range s.left {
		if shardOf(g, count) == shardID {
			on--
		}
	}
	n := len(s.guilds)
	// Initial guild timestamps are consecutive, so each shard holds n/count or one more.
	first := int((uint64(guildEpochMs)) % uint64(count)) // shard of guild 0
	off := (shardID - first + count) % count
	if off >= n {
		return on
	}
	return on + (n-off-1)/count + 1
}

// newSession starts a session on c and indexes it for routing. Needs s.mu.
func (s *Server) newSession(c *conn, shardID, count int) *session {
	ss := &session{id: newSessionID(), shardID: shardID, shardCount: count,
		version: c.version, ring: newEventRing(s.cfg.ReplayBuffer)}
	s.sessions[ss.id] = ss
	s.sessionOrder = append(s.sessionOrder, ss)
	byShard := s.index[count]
	if byShard == nil {
		byShard = make(map[int][]*session)
		s.index[count] = byShard
	}
	byShard[shardID] = append(byShard[shardID], ss)
	ss.conn, c.sess = c, ss
	c.setSessionLog(ss)
	s.markLive(ss)
	return ss
}

// sendReady sends READY (s=1) then one GUILD_CREATE per guild of the shard.
func (s *Server) sendReady(ss *session, shardSent bool) {
	idx := s.guildsOf(ss.shardID, ss.shardCount)
	ids := make([]snowflake.ID, len(idx))
	for i, gi := range idx {
		ids[i] = s.guildAt(gi)
	}
	s.dispatchToSession(ss, typReady, readyData(ss, ids, s.resumeURL, shardSent))
	for i, gi := range idx {
		if gs := s.world.Guilds[ids[i].String()]; gs != nil && gs.Unavailable {
			// An outage: Discord sends GUILD_DELETE instead (reference §6).
			s.dispatchToSession(ss, typGuildDelete, unavailableData(ids[i]))
			continue
		}
		s.dispatchToSession(ss, typGuildCreate, s.guildCreateFor(gi, ids[i]))
	}
}

// unavailableData is GUILD_DELETE's d for a guild in an outage.
func unavailableData(g snowflake.ID) []byte {
	return append(appendID([]byte(`{"id":`), g), `,"unavailable":true}`...)
}

// markLive counts ss as live, and a duplicate if another session of its
// (shard, count) is live already. Needs s.mu.
func (s *Server) markLive(ss *session) {
	if ss.live {
		return
	}
	k := [2]int{ss.shardID, ss.shardCount}
	if s.liveByKey[k] > 0 {
		s.stats.DuplicateSessions++
		s.log.Warn("two live sessions for one shard", "shard_id", ss.shardID, "shard_count", ss.shardCount)
		s.recordDuplicate(ss)
	}
	s.liveByKey[k]++
	ss.live = true
}

// recordDuplicate records that ss becomes live beside the live sessions of
// its (shard, count). The record stays open until one session is left.
// Needs s.mu.
func (s *Server) recordDuplicate(ss *session) {
	rec := DuplicateRecord{Time: time.Now(), ShardID: ss.shardID, ShardCount: ss.shardCount, SessionID: ss.id}
	for _, other := range s.index[ss.shardCount][ss.shardID] {
		if other.live && other != ss {
			rec.LiveSessionIDs = append(rec.LiveSessionIDs, other.id)
		}
	}
	k := [2]int{ss.shardID, ss.shardCount}
	if _, open := s.openDup[k]; !open {
		s.openDup[k] = len(s.duplicates)
	}
	s.duplicates = append(s.duplicates, rec)
}

func (s *Server) markNotLive(ss *session) {
	if !ss.live {
		return
	}
	k := [2]int{ss.shardID, ss.shardCount}
	if s.liveByKey[k]--; s.liveByKey[k] <= 0 {
		delete(s.liveByKey, k)
	}
	if i, open := s.openDup[k]; open && s.liveByKey[k] <= 1 {
		now := time.Now()
		for j := i; j < len(s.duplicates); j++ { // every record of the overlap
			if d := &s.duplicates[j]; d.ShardID == k[0] && d.ShardCount == k[1] && d.Ended.IsZero() {
				d.Ended = now
			}
		}
		delete(s.openDup, k)
	}
	ss.live = false
}

// detach takes ss off its connection; it stays resumable. Needs s.mu.
func (s *Server) detach(ss *session, now time.Time) {
	s.markNotLive(ss)
	ss.conn = nil
	ss.disconnectedAt = now
}

// endSession ends ss for good: no resume, no routing. Needs s.mu.
func (s *Server) endSession(ss *session) {
	if ss.ended {
		return
	}
	s.markNotLive(ss)
	if ss.conn != nil {
		ss.conn.sess = nil
		ss.conn = nil
	}
	ss.ended = true
	list := s.index[ss.shardCount][ss.shardID]
	for i, x := range list {
		if x == ss {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(s.index[ss.shardCount], ss.shardID)
		if len(s.index[ss.shardCount]) == 0 {
			delete(s.index, ss.shardCount)
		}
	} else {
		s.index[ss.shardCount][ss.shardID] = list
	}
}

// dispatchToSession gives ss its next seq, buffers the dispatch for replay and
// sends it if a connection is attached. It returns the connection's queue
// length (0: not sent). Needs s.mu.
func (s *Server) dispatchToSession(ss *session, typJSON []byte, data json.RawMessage) int {
	ss.seq++
	ev := SentEvent{SessionID: ss.id, ShardID: ss.shardID, Seq: ss.seq, Type: string(typJSON[1 : len(typJSON)-1]), Data: data}
	ss.ring.push(ev)
	if ss.conn == nil {
		s.stats.DispatchesBuffered++
		return 0
	}
	return s.sendOnConn(ss, &ev, typJSON)
}

// sendOnConn enqueues one (new or replayed) dispatch on ss's connection and
// checks that seqs on the connection follow each other. typJSON may be nil.
// It returns the queue length (0: not sent). Needs s.mu.
func (s *Server) sendOnConn(ss *session, ev *SentEvent, typJSON []byte) int {
	if typJSON == nil {
		typJSON = jsonString(ev.Type)
	}
	large := len(ev.Data) >= s.cfg.PayloadCompressThreshold || ev.Type == "READY" || ev.Type == "GUILD_CREATE"
	n := ss.conn.enqueueLen(outMsg{kind: outPayload, data: dispatchHead(ev.Seq, typJSON), body: ev.Data, large: large})
	if n == 0 {
		return 0
	}
	if ev.Seq != ss.wireSeq+1 {
		s.stats.SequenceGaps++
		s.log.Error("sequence gap on a connection (fake bug)", "session_id", ss.id, "after", ss.wireSeq, "sent", ev.Seq)
	}
	ss.wireSeq = ev.Seq
	s.stats.DispatchesSent++
	return n
}

// Dispatch sends a dispatch to every live session of the guild's shard
// ((guildID>>22) % count == shardID, for every count in use); guildID 0 means a
// guild-less event: shard 0 only. data is marshalled as `d` (a json.RawMessage
// or []byte is taken as JSON as it is, and kept: do not modify it afterwards;
// reusing one slice for many dispatches is cheapest on zlib-stream). It returns how many sessions got it,
// counting sessions that are disconnected but resumable: they buffer it for
// replay; a guild the bot left (the guild-leave change) gets none. When a
// target connection's queue is over QueueHighWater, Dispatch
// waits for it to drain (backpressure). Data that does not marshal: 0.
func (s *Server) Dispatch(eventType string, guildID snowflake.ID, data any) int {
	raw, ok := marshalData(data)
	if !ok {
		s.log.Error("dispatch: data does not marshal to JSON", "type", eventType)
		return 0
	}
	return s.dispatch(jsonString(eventType), guildID, raw)
}

func marshalData(data any) (json.RawMessage, bool) {
	switch v := data.(type) {
	case json.RawMessage:
		return v, json.Valid(v)
	case []byte:
		return v, json.Valid(v)
	}
	b, err := json.Marshal(data)
	return b, err == nil
}

func (s *Server) dispatch(typJSON []byte, guildID snowflake.ID, raw json.RawMessage) int {
	s.mu.Lock()
	n, slow := s.route(time.Now(), typJSON, guildID, raw, nil)
	s.mu.Unlock()
	s.waitSlow(slow)
	return n
}

// route gives the dispatch to every session of the guild's shard, for every
// count in use (none for a guild the bot left), and ends the sessions past their resume timeout. It returns
// how many sessions got it and appends to slow the connections whose queue
// is over QueueHighWater (wait for them with waitSlow, without s.mu). Needs s.mu.
func (s *Server) route(now time.Time, typJSON []byte, guildID snowflake.ID, raw json.RawMessage, slow []*conn) (int, []*conn) {
	if len(s.left) > 0 && s.left[guildID] {
		return 0, slow // the bot left: Discord sends nothing of the guild
	}
	n := 0
	var expired []*session
	for count, byShard := range s.index {
		for _, ss := range byShard[shardOf(guildID, count)] {
			if ss.expired(now, s.cfg.ResumeTimeout) {
				expired = append(expired, ss)
				continue
			}
			if s.dispatchToSession(ss, typJSON, raw) > s.cfg.QueueHighWater {
				slow = append(slow, ss.conn)
			}
			n++
		}
	}
	for _, ss := range expired {
		s.endSession(ss)
	}
	return n, slow
}

// waitSlow applies backpressure: it waits for each connection to drain.
func (s *Server) waitSlow(slow []*conn) {
	for _, c := range slow {
		c.waitDrained(s.cfg.QueueHighWater / 2)
	}
}
