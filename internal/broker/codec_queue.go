package broker

import (
	"strconv"
	"unicode/utf8"
)

// A queue's declare and delete are the commands a fleet logs by the
// thousand (every new persistent MQTT session declares its queue, under
// the vhost's lock): they are encoded here by appending, the same bytes
// json.Marshal gives for their cmdJSON (TestQueueCommandsEncodeAsJSON,
// FuzzQueueCommandEncoding), without its reflection and allocations.

// appendQueueCmd appends the JSON of a declare_queue or delete_queue
// record, fields in cmdJSON's order, empty ones left out (omitempty).
func appendQueueCmd(b []byte, j *cmdJSON) []byte {
	b = append(b, `{"op":`...)
	b = appendJSONString(b, j.Op)
	str := func(key, v string) {
		if v != "" {
			b = append(b, `,"`...)
			b = append(b, key...)
			b = append(b, `":`...)
			b = appendJSONString(b, v)
		}
	}
	flag := func(key string, v bool) {
		if v {
			b = append(b, `,"`...)
			b = append(b, key...)
			b = append(b, `":true`...)
		}
	}
	num := func(key string, v uint64) {
		if v != 0 {
			b = append(b, `,"`...)
			b = append(b, key...)
			b = append(b, `":`...)
			b = strconv.AppendUint(b, v, 10)
		}
	}
	str("vhost", j.VHost)
	str("name", j.Name)
	str("id", j.ID)
	flag("auto_delete", j.AutoDelete)
	str("arguments", j.Args)
	flag("transient", j.Transient)
	flag("exclusive", j.Exclusive)
	num("owner", j.Owner)
	num("node", j.Node)
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json quotes a string:
// HTML-safe (<, > and & escaped), invalid UTF-8 as U+FFFD, U+2028 and
// U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
