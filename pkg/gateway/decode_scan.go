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
// and returns the offset after it, or where and why it is invalid. It is one
// loop over the whole value, iterative with the open containers in a bit set,
// so decoding a deeply nested dispatch never grows the read loop's goroutine
// stack (which then stays small for the connection's life). Keys, values and
// what follows a value are read in line: a dispatch is about a hundred short
// tokens, and a call per token costs as much as reading it.
func scanValue(buf []byte, i int) (end int, reason string) {
	var objects [maxDepth / 64]uint64 // bit d set: the container at depth d+1 is an object
	depth := 0
	closer := byte(0) // '}' or ']': what closes the innermost open container
	for {
		if closer == '}' { // an object's key comes first
			if i < len(buf) && buf[i] <= ' ' {
				i = skipSpace(buf, i)
			}
			if i >= len(buf) || buf[i] != '"' {
				return i, "expected string"
			}
			if i, reason = scanString(buf, i+1); reason != "" {
				return i, reason
			}
			if i < len(buf) && buf[i] <= ' ' {
				i = skipSpace(buf, i)
			}
			if i >= len(buf) || buf[i] != ':' {
				return i, "expected ':' after key"
			}
			i++
		}
		// A value starts at i.
		if i < len(buf) && buf[i] <= ' ' {
			i = skipSpace(buf, i)
		}
		if i >= len(buf) {
			return i, "unexpected end of message"
		}
		switch c := buf[i]; c {
		case '"':
			if i, reason = scanString(buf, i+1); reason != "" {
				return i, reason
			}
		case '{', '[':
			if i++; i < len(buf) && buf[i] <= ' ' {
				i = skipSpace(buf, i)
			}
			if i < len(buf) && buf[i] == c+2 { // '}' or ']'
				i++
				break // an empty container is a value like a scalar
			}
			if depth == maxDepth {
				return i, "nesting too deep"
			}
			closer = c + 2
			if c == '{' {
				objects[depth/64] |= 1 << (depth % 64)
			} else {
				objects[depth/64] &^= 1 << (depth % 64)
			}
			depth++
			continue // the container's first member
		case 't':
			if i+4 > len(buf) || string(buf[i:i+4]) != "true" {
				return i, "invalid literal"
			}
			i += 4
		case 'f':
			if i+5 > len(buf) || string(buf[i:i+5]) != "false" {
				return i, "invalid literal"
			}
			i += 5
		case 'n':
			if i+4 > len(buf) || string(buf[i:i+4]) != "null" {
				return i, "invalid literal"
			}
			i += 4
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			if i, reason = scanNumber(buf, i); reason != "" {
				return i, reason
			}
		default:
			return i, "invalid character at the start of a value"
		}
		// A value ended at i: close containers until a comma leads to the
		// next member, or the outermost container is closed.
		for {
			if depth == 0 {
				return i, ""
			}
			if i < len(buf) && buf[i] <= ' ' {
				i = skipSpace(buf, i)
			}
			if i < len(buf) && buf[i] == ',' {
				i++
				break
			}
			if i >= len(buf) || buf[i] != closer {
				if closer == '}' {
					return i, "expected ',' or '}' in object"
				}
				return i, "expected ',' or ']' in array"
			}
			i++
			depth--
			closer = ']'
			if depth > 0 && objects[(depth-1)/64]&(1<<((depth-1)%64)) != 0 {
				closer = '}'
			}
		}
	}
}

// scanString scans the rest of a string whose opening quote is before i,
// checking escapes and control characters. Nearly always the first stop byte
// (quote, backslash or control byte) is the closing quote, which this
// function handles alone so that it keeps everything in registers.
func scanString(buf []byte, i int) (int, string) {
	if i = plainEnd(buf, i); i < len(buf) && buf[i] == '"' {
		return i + 1, ""
	}
	return scanStringRest(buf, i)
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
// kinds), or the offset where fewer than eight bytes are left.
func plainEnd(buf []byte, i int) int {
	rest := buf[i:] // one bounds check here, none in the loop
	for len(rest) >= 8 {
		if m := stringStops(binary.LittleEndian.Uint64(rest)); m != 0 {
			return len(buf) - len(rest) + bits.TrailingZeros64(m)/8
		}
		rest = rest[8:]
	}
	return len(buf) - len(rest)
}

// stringStops sets the high bit of the bytes of x (little endian) that are a
// quote, a backslash or below 0x20, and maybe of bytes after the first such
// byte. y - k… sets the high bit of each byte of y below k (k <= 0x80), and
// the borrow from such a byte can only change bytes above it; &^ x then drops
// the bytes of 0x80 and above, whose high bit y - k… may also have set (the
// xors below keep bit 7 as in x). So the lowest set bit is exact, which is
// all plainEnd reads. Flipping bit 1 turns the quote (0x22) into 0x20 and
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
