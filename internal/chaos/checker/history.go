package checker

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Operation kinds (Op.Op).
const (
	OpPublish   = "publish"   // a publish and its confirm
	OpConsume   = "consume"   // one delivery received
	OpSubscribe = "subscribe" // a stream reader attached at Offset
	OpDeclare   = "declare"   // queue.declare (creates if missing)
	OpDelete    = "delete"    // queue.delete
	OpExists    = "exists"    // a passive declare: Exists says what it saw
	OpFault     = "fault"     // a fault injected (Fault names it)
	OpRecover   = "recover"   // from a fault's end to the first confirm after it
	OpDrain     = "drain"     // the final wait for every confirmed message
	// OpEmpty is the end-of-run check, after the drain, that a queue holds
	// no message, ready or unacked, on any node: every value was delivered
	// and acked, none is stranded checked out or waiting unseen.
	OpEmpty = "empty"
)

// Outcomes (Op.Outcome).
const (
	OK      = "ok"      // confirmed, delivered, applied
	Fail    = "fail"    // definitely not done (a nack, an error reply)
	Unknown = "unknown" // the connection died before the answer
)

// Op is one line of a history.
type Op struct {
	Process  string `json:"process"`            // "amqp-p1", "stream-c1", "nemesis"
	Node     int    `json:"node,omitempty"`     // the node the operation went to, from 1
	Op       string `json:"op"`                 // one of the Op* constants
	Protocol string `json:"protocol,omitempty"` // "amqp" or "mqtt"
	QoS      int    `json:"qos,omitempty"`      // MQTT QoS of the publish or delivery
	Queue    string `json:"queue,omitempty"`    // queue, stream or MQTT topic: shared by publish and consume
	Type     string `json:"type,omitempty"`     // "classic", "stream", "quorum", "mqtt"
	Value    string `json:"value,omitempty"`    // "producer-counter"
	Hash     string `json:"hash,omitempty"`     // HashOf(value) as sent or as read from the body
	Outcome  string `json:"outcome"`
	// Redelivered is the broker's redelivered (AMQP) or DUP (MQTT) flag.
	Redelivered bool   `json:"redelivered,omitempty"`
	Offset      *int64 `json:"offset,omitempty"` // stream offset of a delivery, or a subscribe's start
	Exists      *bool  `json:"exists,omitempty"` // what an exists op saw
	Start       int64  `json:"start"`            // unix nanoseconds
	End         int64  `json:"end"`              // unix nanoseconds; 0 when it never returned
	// DeadlineMS bounds a drain or recover op (End-Start), in milliseconds.
	DeadlineMS int64  `json:"deadline_ms,omitempty"`
	Fault      string `json:"fault,omitempty"` // fault kind of a fault or recover op
	// Destroyed lists the values a fault destroyed on disk (a torn record).
	Destroyed []string `json:"destroyed,omitempty"`
	Error     string   `json:"error,omitempty"`
	Detail    string   `json:"detail,omitempty"` // what a fault did, in words
	// Skipped is why a scheduled fault was not injected (outcome fail):
	// the kernel lacks what it needs, or the nodes' binary lacks the
	// chaos hooks. A skipped fault is counted apart, never silently.
	Skipped string `json:"skipped,omitempty"`

	// Line is the op's line number in its file, from 1 (not serialized).
	Line int `json:"-"`
}

// HashOf is the hash a producer sends with a value: 16 hex digits of its
// SHA-256. A consumer reads both from the body; the checker recomputes it.
func HashOf(value string) string {
	s := sha256.Sum256([]byte(value))
	return hex.EncodeToString(s[:8])
}

// SplitValue splits "producer-counter" at its last dash.
func SplitValue(v string) (producer string, counter uint64, ok bool) {
	i := strings.LastIndexByte(v, '-')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.ParseUint(v[i+1:], 10, 64)
	if err != nil {
		return "", 0, false
	}
	return v[:i], n, true
}

// ErrHistory wraps every history decoding error.
var ErrHistory = errors.New("checker: bad history")

// maxLine bounds one history line: a fault op listing destroyed values is
// the longest.
const maxLine = 1 << 20

// ReadHistory decodes a JSON-lines history. Blank lines are skipped; any
// other line that is not an Op with a known op kind and outcome is an error
// naming its line, so a corrupt history is never judged.
func ReadHistory(r io.Reader) ([]Op, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	var ops []Op
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var op Op
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&op); err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrHistory, line, err)
		}
		if err := op.validate(); err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrHistory, line, err)
		}
		op.Line = line
		ops = append(ops, op)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: line %d: %v", ErrHistory, line+1, err)
	}
	return ops, nil
}

func (op *Op) validate() error {
	switch op.Op {
	case OpPublish, OpConsume, OpSubscribe, OpDeclare, OpDelete, OpExists, OpFault, OpRecover, OpDrain, OpEmpty:
	default:
		return fmt.Errorf("unknown op %q", op.Op)
	}
	switch op.Outcome {
	case OK, Fail, Unknown:
	default:
		return fmt.Errorf("unknown outcome %q", op.Outcome)
	}
	if op.Process == "" {
		return errors.New("no process")
	}
	if op.Op == OpExists && op.Outcome == OK && op.Exists == nil {
		return errors.New("an ok exists op without exists")
	}
	if op.Op == OpSubscribe && op.Offset == nil {
		return errors.New("a subscribe op without offset")
	}
	return nil
}

// WriteOp appends op to w as one JSON line.
func WriteOp(w io.Writer, op Op) error {
	b, err := json.Marshal(op)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
