package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// envelope is one gateway message as read from the wire. Only the envelope is
// decoded: d stays raw and aliases the message buffer, so it must be copied
// before the buffer is reused.
type envelope struct {
	op     Opcode
	hasSeq bool // s was a number (not null or absent)
	seq    int
	t      EventType
	d      []byte // raw JSON of d, or nil when absent; "null" when null
}

// decodeEnvelope decodes the top-level object {"op","d","s","t"} of msg in one
// pass, without reflection. It validates the whole message as JSON (d
// included, so the handler never gets broken JSON), requires op, and rejects
// s and t of the wrong type. Unknown keys are skipped; for a repeated key the
// last one wins, as with encoding/json.
func decodeEnvelope(msg []byte) (envelope, error) {
	var env envelope
	if i := skipSpace(msg, 0); i >= len(msg) || msg[i] != '{' {
		return env, &DecodeError{Offset: i, Reason: "message is not a JSON object"}
	}
	hasOp := false
	end, err := members(msg, func(key, val []byte, off int) error {
		hasOp = hasOp || string(key) == "op"
		return env.set(key, val, off)
	})
	if err != nil {
		return env, err
	}
	if end = skipSpace(msg, end); end != len(msg) {
		return env, &DecodeError{Offset: end, Reason: "data after the message"}
	}
	if !hasOp {
		return env, &DecodeError{Offset: 0, Reason: "message has no op"}
	}
	return env, nil
}

// set stores one top-level field. The string(key) comparisons do not allocate.
func (env *envelope) set(key, val []byte, off int) error {
	switch {
	case string(key) == "op":
		n, ok := parseInt(val)
		if !ok {
			return &DecodeError{Offset: off, Reason: "op is not an integer"}
		}
		env.op = Opcode(n)
	case string(key) == "s":
		if string(val) == "null" {
			env.hasSeq, env.seq = false, 0
			return nil
		}
		n, ok := parseInt(val)
		if !ok {
			return &DecodeError{Offset: off, Reason: "s is not an integer"}
		}
		env.hasSeq, env.seq = true, n
	case string(key) == "t":
		if string(val) == "null" {
			env.t = ""
			return nil
		}
		if val[0] != '"' {
			return &DecodeError{Offset: off, Reason: "t is not a string"}
		}
		t, err := eventTypeOf(val)
		if err != nil {
			return &DecodeError{Offset: off, Reason: "t is not a valid string"}
		}
		env.t = t
	case string(key) == "d":
		env.d = val
	}
	return nil
}

// parseInt parses a JSON integer that fits an int (no fraction or exponent).
func parseInt(b []byte) (int, bool) {
	if n, ok := parseDigits(b); ok {
		return n, true
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, false
	}
	return int(n), true
}

// parseDigits parses b if it is 1 to 18 decimal digits, too few to overflow
// an int64: op and s, without strconv's generality.
func parseDigits(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// eventTypeOf turns a JSON string into an EventType, without allocating for
// the names Discord sends.
func eventTypeOf(quoted []byte) (EventType, error) {
	inner := quoted[1 : len(quoted)-1]
	if t, ok := knownEventTypes[string(inner)]; ok {
		return t, nil
	}
	for _, c := range inner {
		if c == '\\' {
			var s string
			if err := json.Unmarshal(quoted, &s); err != nil {
				return "", err
			}
			return EventType(s), nil
		}
	}
	return EventType(inner), nil
}

// DecodeError is a message the connection could not decode.
type DecodeError struct {
	Offset int
	Reason string
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("gateway: decode message at byte %d: %s", e.Offset, e.Reason)
}

// eachMember calls fn with the raw key and value of every member of the JSON
// object obj, which must be valid (decodeEnvelope checked it). It lets the
// connection read HELLO and READY without reflection.
func eachMember(obj []byte, fn func(key, val []byte)) error {
	_, err := members(obj, func(key, val []byte, _ int) error {
		fn(key, val)
		return nil
	})
	return err
}

// members calls fn with the raw key, the raw value and the value's offset of
// each member of the JSON object at the start of obj (whitespace first is
// allowed), in order, validating the object as it goes. It returns the offset
// after the object, or the first error (fn's included). Keys are read in line,
// compact JSON first, as scanFast reads them: with a call to scanMemberKey
// and one to scanString per key, a member of the envelope took 218
// instructions here, 143 without them.
func members(obj []byte, fn func(key, val []byte, off int) error) (int, error) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return i, &DecodeError{Offset: i, Reason: "expected an object"}
	}
	if i = skipSpace(obj, i+1); i < len(obj) && obj[i] == '}' {
		return i + 1, nil
	}
	for {
		if uint(i) >= uint(len(obj)) || obj[i] != '"' {
			if i = skipSpace(obj, i); i >= len(obj) || obj[i] != '"' {
				return i, &DecodeError{Offset: i, Reason: "expected string"}
			}
		}
		start := i + 1
		if i = plainEnd(obj, start); uint(i) < uint(len(obj)) && obj[i] == '"' {
			i++
		} else {
			var reason string
			if i, reason = scanStringRest(obj, i); reason != "" {
				return i, &DecodeError{Offset: i, Reason: reason}
			}
		}
		key := obj[start : i-1]
		if uint(i) >= uint(len(obj)) || obj[i] != ':' {
			if i = skipSpace(obj, i); i >= len(obj) || obj[i] != ':' {
				return i, &DecodeError{Offset: i, Reason: "expected ':' after key"}
			}
		}
		valStart := skipSpace(obj, i+1)
		end := scalarEnd(obj, valStart)
		if end < 0 {
			var reason string
			if end, reason = scanValue(obj, valStart); reason != "" {
				return end, &DecodeError{Offset: end, Reason: reason}
			}
		}
		if err := fn(key, obj[valStart:end], valStart); err != nil {
			return end, err
		}
		if i = end; uint(i) >= uint(len(obj)) || obj[i] != ',' {
			if i = skipSpace(obj, i); i < len(obj) && obj[i] == '}' {
				return i + 1, nil
			}
			if i >= len(obj) || obj[i] != ',' {
				return i, &DecodeError{Offset: i, Reason: "expected ',' or '}' in object"}
			}
		}
		i++
	}
}

// scalarEnd returns the offset after the value at i if it is a string
// without escapes, or a run of digits followed by ',' or '}' (not by a
// fraction or an exponent), as the envelope's t, s and op are; or -1 for
// scanValue to read the value: the call to scanValue costs more than reading
// one of these. What follows a string is left to the caller, which checks it
// after every value.
func scalarEnd(obj []byte, i int) int {
	if uint(i) >= uint(len(obj)) {
		return -1
	}
	switch c := obj[i]; {
	case c == '"':
		if j := plainEnd(obj, i+1); uint(j) < uint(len(obj)) && obj[j] == '"' {
			return j + 1
		}
	case c-'0' < 10:
		j := i + 1
		for c != '0' && uint(j) < uint(len(obj)) && obj[j]-'0' < 10 {
			j++
		}
		if uint(j) < uint(len(obj)) && (obj[j] == ',' || obj[j] == '}') {
			return j
		}
	}
	return -1
}

// jsonString returns the value of a JSON string, or false if val is not one.
func jsonString(val []byte) (string, bool) {
	if len(val) < 2 || val[0] != '"' {
		return "", false
	}
	inner := val[1 : len(val)-1]
	// Fast path: no escapes and valid UTF-8. Invalid UTF-8 goes through
	// encoding/json, which replaces each bad byte with U+FFFD.
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(val, &s); err != nil {
		return "", false
	}
	return s, true
}
