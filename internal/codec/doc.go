// Package codec converts broker messages to and from bytes: the AMQP basic
// properties form (shared by the AMQP adapter and the store, so a stored
// message is delivered without re-encoding) and the stored message record.
//
// Everything here is a pure function of its arguments and safe for
// concurrent use.
package codec
