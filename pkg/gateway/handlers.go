package gateway

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"
)

// opHandler handles one received opcode on the read loop. It must not block:
// anything slow (the event handler, IDENTIFY's permit) runs elsewhere.
type opHandler func(c *connection, env *envelope) error

// opHandlers maps received opcodes to their handlers; other opcodes are
// logged and ignored.
var opHandlers [OpHeartbeatACK + 1]opHandler

func init() {
	opHandlers = [...]opHandler{
		OpDispatch:       handleDispatch,
		OpHeartbeat:      handleHeartbeatRequest,
		OpReconnect:      handleReconnect,
		OpInvalidSession: handleInvalidSession,
		OpHello:          handleHello,
		OpHeartbeatACK:   handleHeartbeatACK,
	}
}

// handleMessage decodes one gateway message and runs its opcode's handler.
func (c *connection) handleMessage(msg []byte) error {
	env, err := decodeEnvelope(msg)
	if err != nil {
		return err
	}
	if env.op >= 0 && int(env.op) < len(opHandlers) && opHandlers[env.op] != nil {
		return opHandlers[env.op](c, &env)
	}
	c.g.log.Debug("ignoring unknown opcode", slog.Int("op", int(env.op)))
	return nil
}

// handleDispatch (op 0) records the sequence as the resume point, handles
// READY/RESUMED, and queues the event for the handler with a private copy of
// d. An ordinary dispatch is delivered only when its s is the next one (see
// checkDispatchSeq) and it has a type and valid UTF-8.
func handleDispatch(c *connection, env *envelope) error {
	g := c.g
	data := make(json.RawMessage, len(env.d))
	copy(data, env.d)
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	switch env.t {
	case EventTypeReady:
		sessionID, resumeURL := readyFields(data)
		if sessionID == "" {
			return fmt.Errorf("decode READY: no session_id")
		}
		g.onReady(env.seq, sessionID, resumeURL)
		c.becameReady()
	case EventTypeResumed:
		g.admitResumedSeq(env.seq, env.hasSeq)
		g.setStatus(StatusReady)
		c.becameReady()
	default:
		if !c.checkDispatchSeq(env) {
			return nil
		}
		if kind := dispatchFault(env); kind != 0 {
			c.refuseContent(env, kind)
			return nil
		}
	}
	it := dispatchItem{t: env.t, seq: env.seq, data: data}
	if c.sock != nil {
		c.run.disp.pushDeferred(it) // woken before the read loop can block: see socket
	} else {
		c.run.disp.push(it)
	}
	return nil
}

// becameReady marks the connection ready; the dispatcher logs it when it
// delivers READY/RESUMED (logging here would grow the read loop's stack).
func (c *connection) becameReady() {
	c.ready = true
	c.signal(&c.readySig)
	c.run.markReady()
}

// handleHeartbeatRequest (op 1 from the server): heartbeat at once.
func handleHeartbeatRequest(c *connection, _ *envelope) error {
	c.hb.beatNow()
	return nil
}

// handleReconnect (op 7): close with a non-1000 code and RESUME.
func handleReconnect(c *connection, _ *envelope) error {
	c.fail(ErrReconnectRequested, ActionResume, CloseCodeReconnect, "reconnect requested")
	return nil
}

// handleInvalidSession (op 9): d true, RESUME again; d false, forget the
// session and IDENTIFY on the bootstrap URL.
func handleInvalidSession(c *connection, env *envelope) error {
	resumable := string(env.d) == "true"
	if resumable {
		c.fail(fmt.Errorf("%w (resumable)", ErrInvalidSession), ActionResume, CloseCodeReconnect, "invalid session")
		return nil
	}
	c.fail(fmt.Errorf("%w (not resumable)", ErrInvalidSession), ActionReidentify, CloseCodeReconnect, "invalid session")
	return nil
}

// handleHello (op 10) starts heartbeating and lets the handshake goroutine
// IDENTIFY or RESUME.
func handleHello(c *connection, env *envelope) error {
	ms := -1.0
	err := eachMember(env.d, func(key, val []byte) {
		if string(key) == "heartbeat_interval" {
			if f, err := strconv.ParseFloat(string(val), 64); err == nil {
				ms = f
			}
		}
	})
	interval := time.Duration(ms * float64(time.Millisecond))
	if err != nil || interval <= 0 || interval > time.Hour {
		return fmt.Errorf("decode HELLO: heartbeat_interval missing or out of range (%v)", ms)
	}
	c.hb.start(interval)
	c.signal(&c.hello) // a second HELLO changes nothing
	return nil
}

// readyFields reads READY's session_id and resume_gateway_url.
func readyFields(d []byte) (sessionID, resumeURL string) {
	_ = eachMember(d, func(key, val []byte) {
		switch string(key) {
		case "session_id":
			sessionID, _ = jsonString(val)
		case "resume_gateway_url":
			resumeURL, _ = jsonString(val)
		}
	})
	return sessionID, resumeURL
}

// handleHeartbeatACK (op 11) records the ACK, the round trip, and that
// Discord read the commands written before the heartbeat.
func handleHeartbeatACK(c *connection, _ *envelope) error {
	c.confirm.acked()
	if rtt, ok := c.hb.ack(); ok {
		c.g.setLatency(rtt)
	}
	return nil
}
