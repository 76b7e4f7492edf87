package amqp

import (
	"errors"
	"fmt"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// amqpError is a protocol exception: it closes the channel (soft) or the
// connection (hard) with a reply code, a text and the failing method.
type amqpError struct {
	code     uint16
	text     string
	classID  uint16
	methodID uint16
	hard     bool
	ch       uint16 // the channel a soft error closes
	// cause is the internal failure behind the exception (a store error
	// naming a file, say): logged by the server, never put in the text.
	cause error
}

func (e *amqpError) channel() uint16 { return e.ch }

func (e *amqpError) Error() string { return fmt.Sprintf("amqp: %d %s", e.code, e.text) }

func (e *amqpError) Unwrap() error { return e.cause }

// internalText is the whole reply text of a failure inside the broker, as
// RabbitMQ sends it: what failed is for the operator's log, not the client.
const internalText = "INTERNAL_ERROR"

// internalError is the 541 exception for a failure inside the broker; err
// goes to the log only.
func internalError(err error, m amqp091.Method) *amqpError {
	e := &amqpError{code: amqp091.InternalError, text: internalText, hard: true, cause: err}
	if m != nil {
		e.classID, e.methodID = m.IDs()
	}
	return e
}

var codeNames = map[uint16]string{
	amqp091.ContentTooLarge: "CONTENT_TOO_LARGE", amqp091.NoRoute: "NO_ROUTE", amqp091.NoConsumers: "NO_CONSUMERS",
	amqp091.AccessRefused: "ACCESS_REFUSED", amqp091.NotFound: "NOT_FOUND", amqp091.ResourceLocked: "RESOURCE_LOCKED",
	amqp091.PreconditionFailed: "PRECONDITION_FAILED", amqp091.ConnectionForced: "CONNECTION_FORCED",
	amqp091.InvalidPath: "INVALID_PATH", amqp091.FrameError: "FRAME_ERROR", amqp091.SyntaxError: "SYNTAX_ERROR",
	amqp091.CommandInvalid: "COMMAND_INVALID", amqp091.ChannelError: "CHANNEL_ERROR",
	amqp091.UnexpectedFrame: "UNEXPECTED_FRAME", amqp091.ResourceError: "RESOURCE_ERROR",
	amqp091.NotAllowed: "NOT_ALLOWED", amqp091.NotImplemented: "NOT_IMPLEMENTED", amqp091.InternalError: "INTERNAL_ERROR",
}

// hardCodes close the connection whatever method raised them.
func isHard(code uint16) bool {
	switch code {
	case amqp091.ConnectionForced, amqp091.InvalidPath, amqp091.FrameError, amqp091.SyntaxError,
		amqp091.CommandInvalid, amqp091.ChannelError, amqp091.UnexpectedFrame, amqp091.ResourceError,
		amqp091.NotAllowed, amqp091.NotImplemented, amqp091.InternalError:
		return true
	}
	return false
}

// newError builds an exception whose text carries the code's name as
// RabbitMQ writes it ("NOT_FOUND - no queue 'q' in vhost '/'").
func newError(code uint16, m amqp091.Method, format string, args ...any) *amqpError {
	e := &amqpError{code: code, text: codeNames[code] + " - " + fmt.Sprintf(format, args...), hard: isHard(code)}
	if m != nil {
		e.classID, e.methodID = m.IDs()
	}
	return e
}

// fromBroker maps a broker error to its AMQP exception. The broker's text
// is written for clients (RabbitMQ's wording); its cause and any error that
// is not a broker error are internal and go to the log only.
func fromBroker(err error, m amqp091.Method) *amqpError {
	var be *broker.Error
	if !errors.As(err, &be) {
		return internalError(err, m)
	}
	code := map[broker.Kind]uint16{
		broker.KindNotFound:           amqp091.NotFound,
		broker.KindPreconditionFailed: amqp091.PreconditionFailed,
		broker.KindAccessRefused:      amqp091.AccessRefused,
		broker.KindResourceLocked:     amqp091.ResourceLocked,
		broker.KindNotAllowed:         amqp091.NotAllowed,
		broker.KindInvalid:            amqp091.CommandInvalid,
		broker.KindResourceError:      amqp091.ResourceError,
	}[be.Kind]
	if code == 0 {
		code = amqp091.InternalError
	}
	e := newError(code, m, "%s", be.Text)
	e.cause = be.Cause
	return e
}
