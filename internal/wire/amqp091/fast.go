package amqp091

import "encoding/binary"

// Hand-written encoders for the methods sent once per message. Going through
// the Method interface would heap-allocate the method struct per call; these
// append the same bytes with no allocation.

func appendShortstr(buf []byte, s string) []byte {
	if len(s) > 255 {
		s = s[:255]
	}
	return append(append(buf, byte(len(s))), s...)
}

func beginMethod(buf []byte, channel, classID, methodID uint16) ([]byte, int) {
	start := len(buf)
	buf = append(buf, FrameMethod, byte(channel>>8), byte(channel), 0, 0, 0, 0,
		byte(classID>>8), byte(classID), byte(methodID>>8), byte(methodID))
	return buf, start
}

func endMethod(buf []byte, start int) []byte {
	binary.BigEndian.PutUint32(buf[start+3:], uint32(len(buf)-start-7))
	return append(buf, FrameEnd)
}

func boolBit(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// AppendDeliver appends a basic.deliver method frame.
func AppendDeliver(buf []byte, channel uint16, consumerTag string, deliveryTag uint64, redelivered bool, exchange, routingKey string) []byte {
	buf, start := beginMethod(buf, channel, ClassBasic, MethodBasicDeliver)
	buf = appendShortstr(buf, consumerTag)
	buf = binary.BigEndian.AppendUint64(buf, deliveryTag)
	buf = append(buf, boolBit(redelivered))
	buf = appendShortstr(buf, exchange)
	buf = appendShortstr(buf, routingKey)
	return endMethod(buf, start)
}

// AppendGetOk appends a basic.get-ok method frame.
func AppendGetOk(buf []byte, channel uint16, deliveryTag uint64, redelivered bool, exchange, routingKey string, messageCount uint32) []byte {
	buf, start := beginMethod(buf, channel, ClassBasic, MethodBasicGetOk)
	buf = binary.BigEndian.AppendUint64(buf, deliveryTag)
	buf = append(buf, boolBit(redelivered))
	buf = appendShortstr(buf, exchange)
	buf = appendShortstr(buf, routingKey)
	buf = binary.BigEndian.AppendUint32(buf, messageCount)
	return endMethod(buf, start)
}

// AppendReturn appends a basic.return method frame.
func AppendReturn(buf []byte, channel uint16, replyCode uint16, replyText, exchange, routingKey string) []byte {
	buf, start := beginMethod(buf, channel, ClassBasic, MethodBasicReturn)
	buf = binary.BigEndian.AppendUint16(buf, replyCode)
	buf = appendShortstr(buf, replyText)
	buf = appendShortstr(buf, exchange)
	buf = appendShortstr(buf, routingKey)
	return endMethod(buf, start)
}

// AppendConfirm appends a basic.ack (nack false) or basic.nack publisher
// confirm.
func AppendConfirm(buf []byte, channel uint16, nack bool, deliveryTag uint64, multiple bool) []byte {
	if nack {
		buf, start := beginMethod(buf, channel, ClassBasic, MethodBasicNack)
		buf = binary.BigEndian.AppendUint64(buf, deliveryTag)
		buf = append(buf, boolBit(multiple)) // requeue bit (bit 1) is always false
		return endMethod(buf, start)
	}
	buf, start := beginMethod(buf, channel, ClassBasic, MethodBasicAck)
	buf = binary.BigEndian.AppendUint64(buf, deliveryTag)
	buf = append(buf, boolBit(multiple))
	return endMethod(buf, start)
}
