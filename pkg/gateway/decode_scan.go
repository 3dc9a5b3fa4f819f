package gateway

import (
	"encoding/binary"
	"math/bits"
)

// maxDepth bounds nesting so a hostile message cannot exhaust the stack.
const maxDepth = 512

// parser is a strict JSON scanner over one message, for a caller that reads a
// value with skipSpace and skipValue. It accepts what encoding/json's Valid
// accepts. The scan functions under it take the buffer and an offset and
// return the new offset, so that the hot loops keep the offset in a register
// instead of storing p.pos at every byte.
type parser struct {
	buf []byte
	pos int
}

func (p *parser) skipSpace() {
	p.pos = skipSpace(p.buf, p.pos)
}

// skipValue skips one JSON value.
func (p *parser) skipValue() error {
	end, reason := scanValue(p.buf, p.pos)
	p.pos = end
	if reason != "" {
		return &DecodeError{Offset: end, Reason: reason}
	}
	return nil
}

// skipSpace returns the offset of the first byte at or after i that is not
// JSON whitespace. Callers test buf[i] <= ' ' first: the gateway sends no
// whitespace, so the call is rarely made.
func skipSpace(buf []byte, i int) int {
	for i < len(buf) {
		switch buf[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanValue scans the JSON value at buf[i:] (whitespace first is allowed)
// and returns the offset after it, or where and why it is invalid. It is
// iterative, with the open containers in a bit set, so decoding a deeply
// nested dispatch never grows the read loop's goroutine stack (which then
// stays small for the connection's life). scanFast does the work; this loop
// only takes over what scanFast leaves: strings with an escape or a control
// byte or near the end of the message, and numbers other than integers of
// digits, each read by a call that would make scanFast keep its state on the
// stack instead of in registers if it made the call itself.
func scanValue(buf []byte, i int) (end int, reason string) {
	var st scanState
	at := atValue
	for {
		var ev scanEvent
		i, ev = scanFast(buf, i, at, &st)
		switch ev {
		case evDone:
			return i, ""
		case evKeyString, evValueString:
			if i, reason = scanStringRest(buf, i); reason != "" {
				return i, reason
			}
			at = atAfterValue
			if ev == evKeyString {
				at = atColon
			}
		case evNumber:
			if i, reason = scanNumber(buf, i); reason != "" {
				return i, reason
			}
			at = atAfterValue
		default:
			return i, scanReasons[ev]
		}
	}
}

// scanState is what scanFast keeps between calls: the open containers.
type scanState struct {
	objects [maxDepth / 64]uint64 // bit d set: the container at depth d+1 is an object
	depth   int
	closer  byte // '}' or ']': what closes the innermost open container; 0 outside any
}

// Where scanFast starts: at a value, at the colon after a key, or after a
// value (at a comma, a closing bracket or the end).
const (
	atValue = iota
	atColon
	atAfterValue
)

// scanEvent is why scanFast returned.
type scanEvent uint8

const (
	evDone        scanEvent = iota // the value ended at the offset returned
	evKeyString                    // scanStringRest must finish the key string from the offset, then a colon follows
	evValueString                  // scanStringRest must finish the string value from the offset
	evNumber                       // scanNumber must read the number at the offset
	evNoKey
	evNoColon
	evEnd
	evBadLiteral
	evBadValue
	evTooDeep
	evBadObject
	evBadArray
)

var scanReasons = [...]string{
	evNoKey:      "expected string",
	evNoColon:    "expected ':' after key",
	evEnd:        "unexpected end of message",
	evBadLiteral: "invalid literal",
	evBadValue:   "invalid character at the start of a value",
	evTooDeep:    "nesting too deep",
	evBadObject:  "expected ',' or '}' in object",
	evBadArray:   "expected ',' or ']' in array",
}

// scanFast scans from i, which is where at says, until the value scanValue
// reads has ended or something needs a call (see scanEvent). It makes no
// calls, so its loop keeps the offset, the message and the innermost closer
// in registers. A dispatch is about two hundred short tokens, and a call per
// token cost as much as reading it: strings are searched in line eight bytes
// at a time. Each step tests first for what compact JSON has there (the
// gateway sends no whitespace) and only then skips whitespace.
func scanFast(buf []byte, i int, at int, st *scanState) (int, scanEvent) {
	var c byte
	buf = buf[:len(buf):len(buf)] // no use of the capacity: one register less
	depth, closer := st.depth, st.closer
	switch at {
	case atColon:
		goto colon
	case atAfterValue:
		goto after
	}

value: // a value starts at i, maybe after whitespace
	if uint(i) >= uint(len(buf)) {
		return i, evEnd
	}
	c = buf[i]
dispatch: // c = buf[i] starts a value, or is whitespace before one
	if c == '"' {
		for i++; ; i += 8 {
			if i < 0 || i >= len(buf)-7 {
				st.depth, st.closer = depth, closer
				return i, evValueString
			}
			x := binary.LittleEndian.Uint64(buf[i : i+8])
			if m := stringStops(x); m != 0 {
				// Nearly always the stop is the closing quote, and in an
				// object the next key's comma and quote follow it in x
				// (if they do not fit, the zeros shifted in match none).
				sh := uint(bits.TrailingZeros64(m)) &^ 7
				y := x >> sh
				if uint32(y)&0xffffff == '"'|','<<8|'"'<<16 && closer == '}' {
					i += int(sh/8) + 3
					goto keyRest
				}
				if i += int(sh / 8); byte(y) != '"' {
					st.depth, st.closer = depth, closer
					return i, evValueString
				}
				i++
				goto after
			}
		}
	}
	switch c {
	case '{', '[':
		i++
		if uint(i) < uint(len(buf)) && buf[i] <= ' ' {
			for uint(i) < uint(len(buf)) && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r') {
				i++
			}
		}
		if uint(i) < uint(len(buf)) && buf[i] == c+2 { // '}' or ']'
			i++
			goto after // an empty container is a value like a scalar
		}
		if depth == maxDepth {
			return i, evTooDeep
		}
		if c == '{' {
			st.objects[depth/64] |= 1 << (depth % 64)
		} else {
			st.objects[depth/64] &^= 1 << (depth % 64)
		}
		depth++
		closer = c + 2
		if c == '[' {
			goto value
		}
		goto key
	case 't':
		if i+4 > len(buf) || string(buf[i:i+4]) != "true" {
			return i, evBadLiteral
		}
		i += 4
	case 'f':
		if i+5 > len(buf) || string(buf[i:i+5]) != "false" {
			return i, evBadLiteral
		}
		i += 5
	case 'n':
		if i+4 > len(buf) || string(buf[i:i+4]) != "null" {
			return i, evBadLiteral
		}
		i += 4
	case '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		// An integer in line; a fraction or an exponent, or a minus
		// sign, goes to scanNumber from the start.
		start := i
		if i++; c != '0' {
			for uint(i) < uint(len(buf)) && buf[i]-'0' < 10 {
				i++
			}
		}
		if uint(i) < uint(len(buf)) && (buf[i] == '.' || buf[i]|0x20 == 'e') {
			st.depth, st.closer = depth, closer
			return start, evNumber
		}
	case '-':
		st.depth, st.closer = depth, closer
		return i, evNumber
	case ' ', '\t', '\n', '\r':
		for i++; uint(i) < uint(len(buf)); i++ {
			if c = buf[i]; c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				goto dispatch
			}
		}
		return i, evEnd
	default:
		return i, evBadValue
	}

after: // a value ended at i: a comma, the innermost closer, or the end
	if uint(i) < uint(len(buf)) {
		if c = buf[i]; c == ',' {
			if closer == '}' {
				i++
				goto key
			}
			if closer == ']' {
				i++
				goto value
			}
			return i, evDone
		}
		if c == closer {
			if depth == 0 {
				return i, evDone
			}
			i++
			if depth--; depth == 0 {
				return i, evDone
			}
			closer = ']'
			if st.objects[(depth-1)/64]&(1<<((depth-1)%64)) != 0 {
				closer = '}'
			}
			goto after
		}
	}
	if closer == 0 {
		return i, evDone
	}
	if uint(i) < uint(len(buf)) && buf[i] <= ' ' {
		for c = buf[i]; c == ' ' || c == '\t' || c == '\n' || c == '\r'; c = buf[i] {
			if i++; uint(i) >= uint(len(buf)) {
				break
			}
		}
		if uint(i) < uint(len(buf)) && (buf[i] == ',' || buf[i] == closer) {
			goto after
		}
	}
	if closer == '}' {
		return i, evBadObject
	}
	return i, evBadArray

key: // an object's key starts at i, maybe after whitespace
	if uint(i) >= uint(len(buf)) || buf[i] != '"' {
		for uint(i) < uint(len(buf)) && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r') {
			i++
		}
		if uint(i) >= uint(len(buf)) || buf[i] != '"' {
			return i, evNoKey
		}
	}
	i++
keyRest: // the rest of a key from i
	for ; ; i += 8 {
		if i < 0 || i >= len(buf)-7 {
			st.depth, st.closer = depth, closer
			return i, evKeyString
		}
		x := binary.LittleEndian.Uint64(buf[i : i+8])
		if m := stringStops(x); m != 0 {
			// Nearly always the stop is the closing quote, and the
			// colon and the value's first byte follow it in x (sh <=
			// 40: the value's byte is in x too).
			sh := uint(bits.TrailingZeros64(m)) &^ 7
			y := x >> sh
			if uint16(y) == '"'|':'<<8 {
				if i += int(sh/8) + 2; sh <= 40 {
					c = byte(y >> 16)
					goto dispatch
				}
				goto value
			}
			if i += int(sh / 8); byte(y) != '"' {
				st.depth, st.closer = depth, closer
				return i, evKeyString
			}
			i++
			break
		}
	}

colon: // the colon after a key is at i, maybe after whitespace
	if uint(i) >= uint(len(buf)) || buf[i] != ':' {
		for uint(i) < uint(len(buf)) && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r') {
			i++
		}
		if uint(i) >= uint(len(buf)) || buf[i] != ':' {
			return i, evNoColon
		}
	}
	i++
	goto value
}

// scanStringRest scans a string from i, where it has an escape or a control
// character, or fewer than eight bytes of the message are left.
func scanStringRest(buf []byte, i int) (int, string) {
	for i < len(buf) {
		switch c := buf[i]; {
		case c == '"':
			return i + 1, ""
		case c == '\\':
			n := escapeLen(buf[i:])
			if n == 0 {
				return i, "invalid escape in string"
			}
			i = plainEnd(buf, i+n)
		case c < 0x20:
			return i, "control character in string"
		default: // in the last bytes, which plainEnd leaves
			i++
		}
	}
	return i, "unterminated string"
}

// plainEnd returns the offset of the first quote, backslash or control byte
// at or after i, looking eight bytes at a time (SWAR, one pass for all three
// kinds), or the offset where fewer than eight bytes are left. It is small
// enough to be inlined.
func plainEnd(buf []byte, i int) int {
	for i >= 0 && i < len(buf)-7 { // i >= 0 (always) drops the bounds checks
		if m := stringStops(binary.LittleEndian.Uint64(buf[i : i+8])); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
		i += 8
	}
	return i
}

// stringStops sets the high bit of the bytes of x (little endian) that are a
// quote, a backslash or below 0x20, and maybe of bytes after the first such
// byte. y - k… sets the high bit of each byte of y below k (k <= 0x80), and
// the borrow from such a byte can only change bytes above it; &^ x then drops
// the bytes of 0x80 and above, whose high bit y - k… may also have set (the
// xors below keep bit 7 as in x). So the lowest set bit is exact, which is
// all plainEnd and scanFast read. Flipping bit 1 turns the quote (0x22) into 0x20 and
// keeps the control bytes below 0x20, while no other byte falls below 0x21:
// one subtraction finds both.
func stringStops(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quoteOrControl := (x ^ 0x02*ones) - 0x21*ones
	backslash := (x ^ '\\'*ones) - ones
	return (quoteOrControl | backslash) &^ x & highs
}

// escapeLen returns the length of the escape sequence at the start of b, or
// 0 if it is not a valid one.
func escapeLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	switch b[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
		if len(b) < 6 || !isHex(b[2]) || !isHex(b[3]) || !isHex(b[4]) || !isHex(b[5]) {
			return 0
		}
		return 6
	}
	return 0
}

func isHex(c byte) bool {
	return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f')
}

func isDigit(c byte) bool { return c-'0' < 10 }

// scanNumber scans a number with JSON's grammar,
// -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?, and returns the offset after it.
func scanNumber(buf []byte, i int) (int, string) {
	if buf[i] == '-' {
		i++
	}
	switch {
	case i < len(buf) && buf[i] == '0':
		i++
	case i < len(buf) && buf[i]-'1' < 9:
		i = skipDigits(buf, i+1)
	default:
		return i, "invalid number"
	}
	if i < len(buf) && buf[i] == '.' {
		start := i + 1
		if i = skipDigits(buf, start); i == start {
			return i, "invalid number fraction"
		}
	}
	if i < len(buf) && buf[i]|0x20 == 'e' { // 'e' or 'E'
		if i++; i < len(buf) && (buf[i] == '+' || buf[i] == '-') {
			i++
		}
		start := i
		if i = skipDigits(buf, start); i == start {
			return i, "invalid number exponent"
		}
	}
	return i, ""
}

// skipDigits returns the offset of the first byte at or after i that is not
// a decimal digit.
func skipDigits(buf []byte, i int) int {
	for i < len(buf) && isDigit(buf[i]) {
		i++
	}
	return i
}
