package gatewaytest

import (
	"bytes"
	"encoding/json"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// maxClientPayload is the largest payload Discord accepts from a client (§7).
const maxClientPayload = gateway.MaxPayloadSize

// clientFrame is one decoded client payload: the envelope only; d stays raw
// until the opcode's handler decodes it.
type clientFrame struct {
	Op gateway.Opcode
	D  json.RawMessage
}

// decodeClientPayload decodes a client payload the way Discord judges it:
// over 4096 bytes or not JSON is 4002; a missing, receive-only or unknown
// opcode (5 included) is 4001. It never panics, whatever b holds.
func decodeClientPayload(b []byte) (clientFrame, *ProtocolError) {
	if len(b) > maxClientPayload {
		return clientFrame{}, protoErr(gateway.CloseDecodeError, "payload over 4096 bytes")
	}
	var env struct {
		Op *int            `json:"op"`
		D  json.RawMessage `json:"d"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return clientFrame{}, protoErr(gateway.CloseDecodeError, "decode error")
	}
	if env.Op == nil {
		return clientFrame{}, protoErr(gateway.CloseUnknownOpcode, "missing op")
	}
	op := gateway.Opcode(*env.Op)
	if !clientOpcode(op) {
		return clientFrame{}, protoErr(gateway.CloseUnknownOpcode, "unknown opcode")
	}
	return clientFrame{Op: op, D: env.D}, nil
}

// clientOpcode reports whether a client may send op.
func clientOpcode(op gateway.Opcode) bool {
	switch op {
	case gateway.OpHeartbeat, gateway.OpIdentify, gateway.OpPresenceUpdate,
		gateway.OpVoiceStateUpdate, gateway.OpResume, gateway.OpRequestGuildMembers,
		gateway.OpRequestSoundboardSounds, gateway.OpRequestChannelInfo:
		return true
	}
	return false
}

// identifyData is IDENTIFY's d.
type identifyData struct {
	Token          string          `json:"token"`
	Intents        *int64          `json:"intents"`
	Properties     json.RawMessage `json:"properties"`
	Compress       bool            `json:"compress"`
	LargeThreshold *int            `json:"large_threshold"`
	Shard          []int           `json:"shard"`
	Presence       json.RawMessage `json:"presence"`

	shardSent bool // whether "shard" was present (READY echoes it only then)
}

// decodeIdentify decodes IDENTIFY's d. A d that is not an object of the right
// shape is 4001 (invalid payload for the opcode); missing intents 4013; a
// shard that is not [id, count] 4010. Token and range checks come later.
func decodeIdentify(d json.RawMessage) (identifyData, *ProtocolError) {
	var id identifyData
	if !isObject(d) {
		return id, protoErr(gateway.CloseUnknownOpcode, "identify: d must be an object")
	}
	if err := json.Unmarshal(d, &id); err != nil {
		return id, protoErr(gateway.CloseUnknownOpcode, "identify: invalid payload")
	}
	if !isObject(id.Properties) {
		return id, protoErr(gateway.CloseUnknownOpcode, "identify: properties must be an object")
	}
	if id.Intents == nil {
		return id, protoErr(gateway.CloseInvalidIntents, "identify: intents required")
	}
	if id.Shard != nil {
		id.shardSent = true
		if len(id.Shard) != 2 {
			return id, protoErr(gateway.CloseInvalidShard, "identify: shard must be [shard_id, num_shards]")
		}
	}
	return id, nil
}

// resumeData is RESUME's d.
type resumeData struct {
	Token     string `json:"token"`
	SessionID string `json:"session_id"`
	Seq       *int   `json:"seq"`
}

// decodeResume decodes RESUME's d; every field is required (4001 otherwise).
func decodeResume(d json.RawMessage) (resumeData, *ProtocolError) {
	var rd resumeData
	if !isObject(d) {
		return rd, protoErr(gateway.CloseUnknownOpcode, "resume: d must be an object")
	}
	if err := json.Unmarshal(d, &rd); err != nil {
		return rd, protoErr(gateway.CloseUnknownOpcode, "resume: invalid payload")
	}
	if rd.SessionID == "" || rd.Seq == nil {
		return rd, protoErr(gateway.CloseUnknownOpcode, "resume: session_id and seq required")
	}
	return rd, nil
}

// checkHeartbeatData accepts d = null or an integer (Discord does not check its value).
func checkHeartbeatData(d json.RawMessage) *ProtocolError {
	d = bytes.TrimSpace(d)
	if len(d) == 0 || string(d) == "null" {
		return nil
	}
	var n int64
	if err := json.Unmarshal(d, &n); err != nil {
		return protoErr(gateway.CloseUnknownOpcode, "heartbeat: d must be null or a sequence number")
	}
	return nil
}

// isObject reports whether raw JSON is an object (the envelope decoder has
// already checked that it is valid JSON).
func isObject(d json.RawMessage) bool {
	d = bytes.TrimSpace(d)
	return len(d) > 0 && d[0] == '{'
}
