package broker

import (
	"fmt"
	"time"

	"github.com/tern-broker/tern/internal/message"
)

// Overflow is the x-overflow behaviour when a length limit is reached.
type Overflow string

// Overflow behaviours, RabbitMQ's names.
const (
	DropHead         Overflow = "drop-head"
	RejectPublish    Overflow = "reject-publish"
	RejectPublishDLX Overflow = "reject-publish-dlx"
)

// queueArgs are the parsed x-arguments of a queue.
type queueArgs struct {
	messageTTL   time.Duration
	hasTTL       bool
	expires      time.Duration
	maxLength    int64 // -1 when unset
	maxBytes     int64 // -1 when unset
	overflow     Overflow
	dlx          string
	hasDLX       bool
	dlrk         string
	hasDLRK      bool
	maxPriority  uint8
	singleActive bool
	queueType    QueueType
	maxAge       time.Duration // streams: x-max-age
	segmentSize  int64         // streams: x-stream-max-segment-size-bytes
	deliverRate  float64       // x-deliver-rate: paced delivery, messages/s
	publishRate  float64       // policy publish-rate only (no x-argument): messages/s the queue accepts
	quorum       quorumArgs    // quorum queues: x-delivery-limit, x-quorum-initial-group-size (quorum_args.go)
}

// argInt reads an integer argument of any width.
func argInt(v any) (int64, bool) { return message.TableInt(v) }

func parseQueueArgs(name, vhost string, args map[string]any) (queueArgs, error) {
	a := queueArgs{maxLength: -1, maxBytes: -1, overflow: DropHead, quorum: defaultQuorumArgs}
	bad := func(key string, v any, why string) error {
		return errorf(KindPreconditionFailed, "invalid arg '%s' for queue '%s' in vhost '%s': {%s,%v}", key, name, vhost, why, v)
	}
	nonNeg := func(key string, v any) (int64, error) {
		n, ok := argInt(v)
		if !ok {
			return 0, bad(key, v, "unacceptable_type")
		}
		if n < 0 {
			return 0, bad(key, v, "value_negative")
		}
		return n, nil
	}
	for key, v := range args {
		var err error
		var n int64
		switch key {
		case "x-message-ttl":
			n, err = nonNeg(key, v)
			a.messageTTL, a.hasTTL = time.Duration(n)*time.Millisecond, true
		case "x-expires":
			n, err = nonNeg(key, v)
			if err == nil && n == 0 {
				err = bad(key, v, "value_zero")
			}
			a.expires = time.Duration(n) * time.Millisecond
		case "x-max-length":
			a.maxLength, err = nonNeg(key, v)
		case "x-max-length-bytes":
			a.maxBytes, err = nonNeg(key, v)
		case "x-overflow":
			s, _ := v.(string)
			switch Overflow(s) {
			case DropHead, RejectPublish, RejectPublishDLX:
				a.overflow = Overflow(s)
			default:
				err = bad(key, v, "invalid_overflow")
			}
		case "x-dead-letter-exchange":
			s, ok := v.(string)
			if !ok {
				err = bad(key, v, "unacceptable_type")
			}
			a.dlx, a.hasDLX = s, true
		case "x-dead-letter-routing-key":
			s, ok := v.(string)
			if !ok {
				err = bad(key, v, "unacceptable_type")
			}
			a.dlrk, a.hasDLRK = s, true
		case "x-max-priority":
			n, err = nonNeg(key, v)
			if err == nil && n > 255 {
				err = bad(key, v, "value_too_large")
			}
			a.maxPriority = uint8(n)
		case "x-single-active-consumer":
			b, ok := v.(bool)
			if !ok {
				err = bad(key, v, "unacceptable_type")
			}
			a.singleActive = b
		case "x-queue-type":
			// Quorum queues need a cluster: declaring one without is
			// refused when the queue is attached (quorum_args.go).
			s, _ := v.(string)
			t, ok := parseQueueType(s)
			if !ok {
				err = bad(key, v, "unsupported_queue_type")
			}
			a.queueType = t
		case "x-max-age":
			s, _ := v.(string)
			a.maxAge, err = parseMaxAge(s)
			if err != nil {
				err = bad(key, v, "invalid_max_age")
			}
		case "x-stream-max-segment-size-bytes":
			a.segmentSize, err = nonNeg(key, v)
		case "x-deliver-rate":
			switch r := v.(type) {
			case float64:
				a.deliverRate = r
			case float32:
				a.deliverRate = float64(r)
			default:
				n, ok := argInt(v)
				if !ok {
					err = bad(key, v, "unacceptable_type")
				}
				a.deliverRate = float64(n)
			}
			if err == nil && a.deliverRate <= 0 {
				err = bad(key, v, "value_not_positive")
			}
		}
		if err != nil {
			return a, err
		}
	}
	if a.queueType == Quorum {
		// Only quorum queues read x-delivery-limit and
		// x-quorum-initial-group-size, so only theirs are validated: a
		// classic queue ignores them, as in RabbitMQ, and one logged by
		// an earlier Tern with any value still restores.
		for _, key := range quorumArgKeys {
			if v, ok := args[key]; ok {
				if err := a.quorum.parse(key, v, bad); err != nil {
					return a, err
				}
			}
		}
	}
	if a.hasDLRK && !a.hasDLX {
		return a, errorf(KindPreconditionFailed, "invalid arg 'x-dead-letter-routing-key' for queue '%s' in vhost '%s': Key x-dead-letter-exchange should also be set", name, vhost)
	}
	return a, nil
}

func msDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }

// parseMaxAge reads RabbitMQ's x-max-age: a number and a unit, Y, M, D,
// h, m or s ("7D", "12h").
func parseMaxAge(s string) (time.Duration, error) {
	if len(s) < 2 {
		return 0, fmt.Errorf("broker: x-max-age %q", s)
	}
	var n int64
	if _, err := fmt.Sscanf(s[:len(s)-1], "%d", &n); err != nil || n <= 0 {
		return 0, fmt.Errorf("broker: x-max-age %q", s)
	}
	unit := map[byte]time.Duration{'Y': 365 * 24 * time.Hour, 'M': 30 * 24 * time.Hour, 'D': 24 * time.Hour,
		'h': time.Hour, 'm': time.Minute, 's': time.Second}[s[len(s)-1]]
	if unit == 0 {
		return 0, fmt.Errorf("broker: x-max-age %q", s)
	}
	return time.Duration(n) * unit, nil
}

// equivalentArgs compares the arguments that define a queue's behaviour, as
// RabbitMQ does on a redeclare, and names the first that differs.
func equivalentArgs(kind, name, vhost string, have, want map[string]any, keys []string) error {
	for _, k := range keys {
		h, hok := have[k]
		w, wok := want[k]
		if hok != wok || (hok && !argEqual(h, w)) {
			return errorf(KindPreconditionFailed, "inequivalent arg '%s' for %s '%s' in vhost '%s': received %s but current is %s",
				k, kind, name, vhost, describeArg(w, wok), describeArg(h, hok))
		}
	}
	return nil
}

func argEqual(a, b any) bool {
	if ai, ok := argInt(a); ok {
		bi, ok := argInt(b)
		return ok && ai == bi
	}
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func describeArg(v any, ok bool) string {
	if !ok {
		return "none"
	}
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("the value '%s' of type 'longstr'", v)
	case bool:
		return fmt.Sprintf("the value '%v' of type 'bool'", v)
	}
	if n, ok := argInt(v); ok {
		return fmt.Sprintf("the value '%d' of type 'signedint'", n)
	}
	return fmt.Sprintf("the value '%v'", v)
}

// queueArgKeys are the arguments compared on redeclare; a quorum queue's
// also quorumArgKeys (argKeysOf).
var queueArgKeys = []string{
	"x-message-ttl", "x-expires", "x-max-length", "x-max-length-bytes", "x-overflow",
	"x-dead-letter-exchange", "x-dead-letter-routing-key", "x-max-priority",
	"x-single-active-consumer", "x-queue-type", "x-max-age", "x-stream-max-segment-size-bytes", "x-deliver-rate",
}

// quorumArgKeys are the arguments only quorum queues read, validate and
// compare on redeclare; other queue types ignore them.
var quorumArgKeys = []string{"x-delivery-limit", "x-quorum-initial-group-size"}

var quorumQueueArgKeys = append(append([]string(nil), queueArgKeys...), quorumArgKeys...)

// argKeysOf are the arguments a redeclare of a queue of type t compares.
func argKeysOf(t QueueType) []string {
	if t == Quorum {
		return quorumQueueArgKeys
	}
	return queueArgKeys
}
