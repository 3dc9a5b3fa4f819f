package gatewaytest

// targets lists the connections chaos aims at: those whose session's shard
// ID is shardID (any count), or every connection for shardID -1. Needs s.mu.
func (s *Server) targets(shardID int) []*conn {
	var out []*conn
	for c := range s.conns {
		if shardID == -1 || (c.sess != nil && c.sess.shardID == shardID) {
			out = append(out, c)
		}
	}
	return out
}

// each queues m on every target connection and returns how many took it.
func (s *Server) each(shardID int, m outMsg) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.targets(shardID) {
		if c.enqueue(m) {
			n++
		}
	}
	return n
}

// SendReconnect sends op 7 (the connection stays open; the client should
// close it and resume).
func (s *Server) SendReconnect(shardID int) int {
	return s.each(shardID, outMsg{kind: outPayload, data: frameReconnect})
}

// InvalidateSession sends op 9 d=resumable. With false the session also ends
// (RESUME gets op 9 false); the connection stays open, unauthenticated.
func (s *Server) InvalidateSession(shardID int, resumable bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.targets(shardID) {
		if !c.enqueue(outMsg{kind: outPayload, data: invalidSessionFrame(resumable)}) {
			continue
		}
		n++
		if !resumable && c.sess != nil {
			s.endSession(c.sess)
		}
	}
	return n
}

// CloseConnections closes with code and reason. The session stays resumable
// (server-sent closes are, in practice), whatever the code.
func (s *Server) CloseConnections(shardID int, code int, reason string) int {
	if code < 1000 || code > 4999 {
		return 0
	}
	return s.each(shardID, outMsg{kind: outClose, code: code, reason: reason})
}

// DropConnections drops TCP without a close frame; sessions stay resumable.
func (s *Server) DropConnections(shardID int) int {
	return s.each(shardID, outMsg{kind: outDrop})
}

// RequestHeartbeat sends op 1 from the server; the client must heartbeat at once.
func (s *Server) RequestHeartbeat(shardID int) int {
	return s.each(shardID, outMsg{kind: outPayload, data: frameHeartbeatRequest})
}

// SendRaw sends a raw frame, bypassing compression (garbage injection).
func (s *Server) SendRaw(shardID int, frame []byte, binary bool) int {
	return s.each(shardID, outMsg{kind: outRaw, data: append([]byte(nil), frame...), binary: binary})
}

// SetAckHeartbeats(false) stops sending op 11 (zombie connections); true resumes.
func (s *Server) SetAckHeartbeats(ack bool) { s.ackHeartbeats.Store(ack) }

// SetWithholdReady(true) makes the fake answer neither IDENTIFY nor RESUME:
// an IDENTIFY that passes every check is counted and recorded (it costs a
// session start, as on Discord) but gets no READY and starts no session; a
// RESUME with a good token gets no replay, no RESUMED and no op 9, and is not
// recorded. Heartbeats are still ACKed. It acts out a stuck gateway node, so
// clients must give up on their own (a ready timeout). false restores normal
// answers for later commands.
func (s *Server) SetWithholdReady(withhold bool) { s.withholdReady.Store(withhold) }

// SetSplitFrames splits each zlib-stream message into n binary frames (n<=1:
// off), so clients must buffer until 00 00 ff ff. zstd-stream is not split:
// Discord sends exactly one gateway message per websocket message there.
func (s *Server) SetSplitFrames(n int) {
	if n < 1 {
		n = 1
	}
	if n > 1<<16 {
		n = 1 << 16
	}
	s.splitFrames.Store(int32(n))
}
