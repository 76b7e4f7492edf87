package amqp

import (
	"github.com/tern-broker/tern/internal/message"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// appendContent appends the header and body frames of m on channel.
func appendContent(buf []byte, channel uint16, m *message.Message, frameMax uint32) []byte {
	if m.WireProps != nil {
		buf = amqp091.AppendHeaderFrame(buf, channel, amqp091.ClassBasic, uint64(len(m.Body)), m.WireProps)
	} else {
		// Encode the properties after a placeholder header, then fix the
		// frame size: no temporary buffer.
		start := len(buf)
		buf = amqp091.AppendHeaderFrame(buf, channel, amqp091.ClassBasic, uint64(len(m.Body)), nil)
		buf = buf[:len(buf)-1] // drop the frame end
		buf = message.AppendProperties(buf, &m.Props)
		size := len(buf) - start - 7
		buf[start+3], buf[start+4], buf[start+5], buf[start+6] = byte(size>>24), byte(size>>16), byte(size>>8), byte(size)
		buf = append(buf, amqp091.FrameEnd)
	}
	return amqp091.AppendBodyFrames(buf, channel, m.Body, frameMax)
}

// fromWire converts decoded AMQP basic properties to the core's. The
// encoded bytes travel beside them as Message.WireProps.
func fromWire(p *amqp091.Properties) message.Properties {
	return message.Properties{
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
