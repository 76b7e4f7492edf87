package forward

import (
	"encoding/binary"
	"errors"

	"github.com/tern-broker/tern/internal/record"
)

// The wire format of every request, reply and notify: uvarints, strings
// and byte strings as a uvarint length and the bytes, flags as one byte.
// Decoders never trust a length: every read is bounds-checked and a
// count is checked against the bytes left before anything is allocated
// for it.

// errMalformed reports a body that does not decode.
var errMalformed = errors.New("forward: malformed message")

// The encoders and the reader are internal/record's, which the WAL's
// records share.
var (
	appendBytes  = record.AppendBytes
	appendString = record.AppendString
	appendBool   = record.AppendBool
)

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func binaryAppendVarint(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }

// reader decodes a body; the first failure sticks in Err, and wraps
// errMalformed.
type reader struct{ record.Reader }

func newReader(body []byte) reader { return reader{record.NewReader(body, errMalformed)} }
