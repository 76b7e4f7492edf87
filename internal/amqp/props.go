package amqp

import (
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// toBroker converts decoded basic properties to the core's.
func toBroker(p *amqp091.Properties) broker.Properties {
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

// appendBrokerProps encodes core properties as AMQP basic properties, setting
// a flag for every property that has a value.
func appendBrokerProps(buf []byte, p *broker.Properties) []byte {
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

// appendContent appends the header and body frames of m on channel.
func appendContent(buf []byte, channel uint16, m *broker.Message, frameMax uint32) []byte {
	if m.WireProps != nil {
		buf = amqp091.AppendHeaderFrame(buf, channel, amqp091.ClassBasic, uint64(len(m.Body)), m.WireProps)
	} else {
		// Encode the properties after a placeholder header, then fix the
		// frame size: no temporary buffer.
		start := len(buf)
		buf = amqp091.AppendHeaderFrame(buf, channel, amqp091.ClassBasic, uint64(len(m.Body)), nil)
		buf = buf[:len(buf)-1] // drop the frame end
		buf = appendBrokerProps(buf, &m.Props)
		size := len(buf) - start - 7
		buf[start+3], buf[start+4], buf[start+5], buf[start+6] = byte(size>>24), byte(size>>16), byte(size>>8), byte(size)
		buf = append(buf, amqp091.FrameEnd)
	}
	return amqp091.AppendBodyFrames(buf, channel, m.Body, frameMax)
}
