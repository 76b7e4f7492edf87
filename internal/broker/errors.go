package broker

import (
	"errors"
	"fmt"
)

// Kind classifies a broker error so adapters can map it to a protocol reply
// (AMQP reply code, MQTT reason code).
type Kind int

// Error kinds.
const (
	KindNotFound Kind = iota + 1
	KindPreconditionFailed
	KindAccessRefused
	KindResourceLocked
	KindNotAllowed
	KindInvalid
	KindResourceError
)

// Error is a broker error with a kind and a human-readable text in
// RabbitMQ's wording.
type Error struct {
	Kind Kind
	Text string
	// Cause is the internal failure behind the error, such as a store
	// error naming a file: for the server's log, never for a client, so it
	// is kept out of Text.
	Cause error
	// queueLimit marks a declare refused by max-queues (IsQueueLimit).
	queueLimit bool
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return "broker: " + e.Text + ": " + e.Cause.Error()
	}
	return "broker: " + e.Text
}

// Unwrap returns the internal cause, if any.
func (e *Error) Unwrap() error { return e.Cause }

// Is matches errors of the same kind, so errors.Is(err, ErrNotFound) works.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Text == "" && t.Kind == e.Kind
}

// Sentinels for errors.Is.
var (
	ErrNotFound           = &Error{Kind: KindNotFound}
	ErrPreconditionFailed = &Error{Kind: KindPreconditionFailed}
	ErrAccessRefused      = &Error{Kind: KindAccessRefused}
	ErrResourceLocked     = &Error{Kind: KindResourceLocked}
	ErrNotAllowed         = &Error{Kind: KindNotAllowed}
	ErrInvalid            = &Error{Kind: KindInvalid}
)

func errorf(kind Kind, format string, args ...any) error {
	return &Error{Kind: kind, Text: fmt.Sprintf(format, args...)}
}

// causedf is errorf for a failure inside the broker: the text tells the
// client what failed, the cause (with its paths and syscall errors) stays
// for the log.
func causedf(kind Kind, cause error, format string, args ...any) error {
	return &Error{Kind: kind, Text: fmt.Sprintf(format, args...), Cause: cause}
}
