package gateway

import (
	"bytes"
	"encoding/binary"
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
	p := parser{buf: msg}
	p.skipSpace()
	if !p.consume('{') {
		return env, p.errorf("message is not a JSON object")
	}
	hasOp := false
	p.skipSpace()
	if p.consume('}') {
		return env, &DecodeError{Offset: p.pos, Reason: "message has no op"}
	}
	for {
		p.skipSpace()
		keyStart := p.pos
		if err := p.skipString(); err != nil {
			return env, err
		}
		key := msg[keyStart+1 : p.pos-1]
		p.skipSpace()
		if !p.consume(':') {
			return env, p.errorf("expected ':' after key")
		}
		p.skipSpace()
		valStart := p.pos
		if err := p.skipValue(); err != nil {
			return env, err
		}
		val := msg[valStart:p.pos]
		if err := env.set(key, val, valStart); err != nil {
			return env, err
		}
		hasOp = hasOp || string(key) == "op"
		p.skipSpace()
		if p.consume(',') {
			continue
		}
		if p.consume('}') {
			break
		}
		return env, p.errorf("expected ',' or '}' in message")
	}
	p.skipSpace()
	if p.pos != len(msg) {
		return env, p.errorf("data after the message")
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
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, false
	}
	return int(n), true
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

// maxDepth bounds nesting so a hostile message cannot exhaust the stack.
const maxDepth = 512

// parser is a strict JSON scanner over one message. It accepts what
// encoding/json's Valid accepts.
type parser struct {
	buf []byte
	pos int
}

func (p *parser) errorf(reason string) error {
	return &DecodeError{Offset: p.pos, Reason: reason}
}

func (p *parser) consume(c byte) bool {
	if p.pos < len(p.buf) && p.buf[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

func (p *parser) skipSpace() {
	for p.pos < len(p.buf) {
		switch p.buf[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// skipValue skips one JSON value. It is iterative, with the open containers
// kept in a bit set, so decoding a deeply nested dispatch never grows the read
// loop's goroutine stack (which then stays small for the connection's life).
func (p *parser) skipValue() error {
	var objects [maxDepth/8 + 1]uint8 // bit d set: the container at depth d is an object
	depth := 0
	for {
		opened, err := p.valueStart(&depth, &objects)
		if err != nil {
			return err
		}
		if opened {
			continue // a container with a first member to read
		}
		more, err := p.closeContainers(&depth, &objects)
		if err != nil || !more {
			return err
		}
	}
}

// valueStart reads a scalar or an empty container whole, or opens a non-empty
// container (reading an object's first key), and reports which.
func (p *parser) valueStart(depth *int, objects *[maxDepth/8 + 1]uint8) (opened bool, err error) {
	p.skipSpace()
	if p.pos >= len(p.buf) {
		return false, p.errorf("unexpected end of message")
	}
	switch c := p.buf[p.pos]; {
	case c == '"':
		return false, p.skipString()
	case c == '{' || c == '[':
		p.pos++
		p.skipSpace()
		if (c == '{' && p.consume('}')) || (c == '[' && p.consume(']')) {
			return false, nil
		}
		if *depth++; *depth > maxDepth {
			return false, p.errorf("nesting too deep")
		}
		bit := uint8(1) << (*depth % 8)
		if c == '[' {
			objects[*depth/8] &^= bit
			return true, nil
		}
		objects[*depth/8] |= bit
		return true, p.skipKey()
	case c == 't':
		return false, p.skipLiteral("true")
	case c == 'f':
		return false, p.skipLiteral("false")
	case c == 'n':
		return false, p.skipLiteral("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return false, p.skipNumber()
	}
	return false, p.errorf("invalid character at the start of a value")
}

// closeContainers reads what follows a complete value: closing brackets, or a
// comma (and key) before the next member. more reports that a value follows.
func (p *parser) closeContainers(depth *int, objects *[maxDepth/8 + 1]uint8) (more bool, err error) {
	for *depth > 0 {
		p.skipSpace()
		isObject := objects[*depth/8]&(uint8(1)<<(*depth%8)) != 0
		switch {
		case p.consume(','):
			if isObject {
				return true, p.skipKey()
			}
			return true, nil
		case isObject && p.consume('}'), !isObject && p.consume(']'):
			*depth--
		case isObject:
			return false, p.errorf("expected ',' or '}' in object")
		default:
			return false, p.errorf("expected ',' or ']' in array")
		}
	}
	return false, nil
}

// skipKey reads an object key and its colon.
func (p *parser) skipKey() error {
	p.skipSpace()
	if err := p.skipString(); err != nil {
		return err
	}
	p.skipSpace()
	if !p.consume(':') {
		return p.errorf("expected ':' after key")
	}
	return nil
}

func (p *parser) skipLiteral(lit string) error {
	if len(p.buf)-p.pos < len(lit) || string(p.buf[p.pos:p.pos+len(lit)]) != lit {
		return p.errorf("invalid literal")
	}
	p.pos += len(lit)
	return nil
}

// skipString skips a string, checking escapes and control characters. It is
// the hot path of the decoder (most of a dispatch is strings), so it jumps
// from quote to quote with bytes.IndexByte and checks the bytes in between
// eight at a time.
func (p *parser) skipString() error {
	if !p.consume('"') {
		return p.errorf("expected string")
	}
	buf := p.buf
	i := p.pos
	// Most strings of a dispatch are short keys and IDs: one pass over their
	// bytes costs less than the three vectorised scans below. It stops at the
	// first byte that needs them, which the loop below then finds again.
	for end := min(i+shortString, len(buf)); i < end; i++ {
		if stringStop[buf[i]] {
			if buf[i] == '"' {
				p.pos = i + 1
				return nil
			}
			break
		}
	}
	for {
		q := bytes.IndexByte(buf[i:], '"')
		if q < 0 {
			p.pos = len(buf)
			return p.errorf("unterminated string")
		}
		seg := buf[i : i+q]
		if b := bytes.IndexByte(seg, '\\'); b >= 0 {
			if c := controlIndex(seg[:b]); c >= 0 {
				p.pos = i + c
				return p.errorf("control character in string")
			}
			n, ok := escapeLen(buf[i+b:])
			if !ok {
				p.pos = i + b
				return p.errorf("invalid escape in string")
			}
			i += b + n
			continue
		}
		if c := controlIndex(seg); c >= 0 {
			p.pos = i + c
			return p.errorf("control character in string")
		}
		p.pos = i + q + 1
		return nil
	}
}

// shortString is how many bytes of a string skipString scans one by one
// before it turns to bytes.IndexByte.
const shortString = 24

// stringStop marks the bytes that end skipString's one-by-one scan: the
// quote, the backslash and the control characters.
var stringStop = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// controlIndex returns the index of the first byte below 0x20 in b, or -1.
func controlIndex(b []byte) int {
	const highs, limit = 0x8080808080808080, 0x20 * 0x0101010101010101
	j := 0
	for ; j+8 <= len(b); j += 8 {
		x := binary.LittleEndian.Uint64(b[j:])
		if (x-limit)&^x&highs != 0 {
			break // a byte below 0x20 in this word (found below)
		}
	}
	for ; j < len(b); j++ {
		if b[j] < 0x20 {
			return j
		}
	}
	return -1
}

// escapeLen returns the length of the escape sequence at the start of b.
func escapeLen(b []byte) (int, bool) {
	if len(b) < 2 {
		return 0, false
	}
	switch b[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, true
	case 'u':
		if len(b) < 6 {
			return 0, false
		}
		for _, h := range b[2:6] {
			if !isHex(h) {
				return 0, false
			}
		}
		return 6, true
	}
	return 0, false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// skipNumber skips a number with JSON's grammar: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?
func (p *parser) skipNumber() error {
	buf := p.buf
	i := p.pos
	if i < len(buf) && buf[i] == '-' {
		i++
	}
	switch {
	case i < len(buf) && buf[i] == '0':
		i++
	case i < len(buf) && buf[i] >= '1' && buf[i] <= '9':
		for i < len(buf) && isDigit(buf[i]) {
			i++
		}
	default:
		p.pos = i
		return p.errorf("invalid number")
	}
	if i < len(buf) && buf[i] == '.' {
		i++
		start := i
		for i < len(buf) && isDigit(buf[i]) {
			i++
		}
		if i == start {
			p.pos = i
			return p.errorf("invalid number fraction")
		}
	}
	if i < len(buf) && (buf[i] == 'e' || buf[i] == 'E') {
		i++
		if i < len(buf) && (buf[i] == '+' || buf[i] == '-') {
			i++
		}
		start := i
		for i < len(buf) && isDigit(buf[i]) {
			i++
		}
		if i == start {
			p.pos = i
			return p.errorf("invalid number exponent")
		}
	}
	p.pos = i
	return nil
}

// eachMember calls fn with the raw key and value of every member of the JSON
// object obj, which must be valid (decodeEnvelope checked it). It lets the
// connection read HELLO and READY without reflection.
func eachMember(obj []byte, fn func(key, val []byte)) error {
	p := parser{buf: obj}
	p.skipSpace()
	if !p.consume('{') {
		return p.errorf("expected an object")
	}
	p.skipSpace()
	if p.consume('}') {
		return nil
	}
	for {
		p.skipSpace()
		keyStart := p.pos
		if err := p.skipString(); err != nil {
			return err
		}
		key := obj[keyStart+1 : p.pos-1]
		p.skipSpace()
		if !p.consume(':') {
			return p.errorf("expected ':' after key")
		}
		p.skipSpace()
		valStart := p.pos
		if err := p.skipValue(); err != nil {
			return err
		}
		fn(key, obj[valStart:p.pos])
		p.skipSpace()
		if p.consume(',') {
			continue
		}
		if p.consume('}') {
			return nil
		}
		return p.errorf("expected ',' or '}' in object")
	}
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
