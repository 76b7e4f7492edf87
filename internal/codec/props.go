package codec

import (
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// FromWire converts decoded AMQP basic properties to the core's.
func FromWire(p *amqp091.Properties) broker.Properties {
	return broker.Properties{
		ContentType:     p.ContentType,
		ContentEncoding: p.ContentEncoding,
		Headers:         p.Headers,
		DeliveryMode:    p.DeliveryMode,
		Priority:        p.Priority,
		CorrelationID:   p.CorrelationID,
		ReplyTo:         p.ReplyTo,
		Expiration:      p.Expiration,
		MessageID:       p.MessageID,
		Timestamp:       p.Timestamp,
		Type:            p.Type,
		UserID:          p.UserID,
		AppID:           p.AppID,
		ClusterID:       p.ClusterID,
	}
}

// AppendProperties encodes core properties as AMQP basic properties (flags
// included), with a flag for every property that has a value.
func AppendProperties(buf []byte, p *broker.Properties) []byte {
	var w amqp091.Properties
	set := func(flag uint16, present bool) {
		if present {
			w.Flags |= flag
		}
	}
	w.ContentType, w.ContentEncoding, w.Headers = p.ContentType, p.ContentEncoding, p.Headers
	w.DeliveryMode, w.Priority, w.CorrelationID, w.ReplyTo = p.DeliveryMode, p.Priority, p.CorrelationID, p.ReplyTo
	w.Expiration, w.MessageID, w.Timestamp, w.Type = p.Expiration, p.MessageID, p.Timestamp, p.Type
	w.UserID, w.AppID, w.ClusterID = p.UserID, p.AppID, p.ClusterID
	set(amqp091.FlagContentType, p.ContentType != "")
	set(amqp091.FlagContentEncoding, p.ContentEncoding != "")
	set(amqp091.FlagHeaders, p.Headers != nil)
	set(amqp091.FlagDeliveryMode, p.DeliveryMode != 0)
	set(amqp091.FlagPriority, p.Priority != 0)
	set(amqp091.FlagCorrelationID, p.CorrelationID != "")
	set(amqp091.FlagReplyTo, p.ReplyTo != "")
	set(amqp091.FlagExpiration, p.Expiration != "")
	set(amqp091.FlagMessageID, p.MessageID != "")
	set(amqp091.FlagTimestamp, !p.Timestamp.IsZero())
	set(amqp091.FlagType, p.Type != "")
	set(amqp091.FlagUserID, p.UserID != "")
	set(amqp091.FlagAppID, p.AppID != "")
	set(amqp091.FlagClusterID, p.ClusterID != "")
	return amqp091.AppendProperties(buf, &w)
}

// WireProperties returns m's encoded AMQP properties: the bytes it arrived
// with when they are kept, else a fresh encoding.
func WireProperties(buf []byte, m *broker.Message) []byte {
	if m.WireProps != nil {
		return append(buf, m.WireProps...)
	}
	return AppendProperties(buf, &m.Props)
}
