package mqtt

// frame prefixes body with the fixed header.
func frame(b []byte, first byte, body []byte) []byte {
	b = append(b, first)
	b = appendVarint(b, uint32(len(body)))
	return append(b, body...)
}

// Append implements Packet. A CONNECT is encoded for its own Level,
// whatever v says.
func (c *Connect) Append(b []byte, _ byte) []byte {
	v := c.Level
	var body []byte
	body = appendStr(body, c.ProtocolName)
	body = append(body, c.Level)
	var flags byte
	if c.CleanStart {
		flags |= 0x02
	}
	if c.Will {
		flags |= 0x04 | c.WillQoS<<3
		if c.WillRetain {
			flags |= 0x20
		}
	}
	if c.HasPassword {
		flags |= 0x40
	}
	if c.HasUsername {
		flags |= 0x80
	}
	body = append(body, flags)
	body = appendU16(body, c.KeepAlive)
	if v == V5 {
		body = appendProperties(body, &c.Props)
	}
	body = appendStr(body, c.ClientID)
	if c.Will {
		if v == V5 {
			body = appendProperties(body, &c.WillProps)
		}
		body = appendStr(body, c.WillTopic)
		body = appendBinary(body, c.WillPayload)
	}
	if c.HasUsername {
		body = appendStr(body, c.Username)
	}
	if c.HasPassword {
		body = appendBinary(body, c.Password)
	}
	return frame(b, CONNECT<<4, body)
}

// Append implements Packet.
func (c *Connack) Append(b []byte, v byte) []byte {
	var sp byte
	if c.SessionPresent {
		sp = 1
	}
	if v != V5 {
		return append(b, CONNACK<<4, 2, sp, V3ConnackCode(c.ReasonCode))
	}
	body := []byte{sp, c.ReasonCode}
	body = appendProperties(body, &c.Props)
	return frame(b, CONNACK<<4, body)
}

// Append implements Packet.
func (p *Publish) Append(b []byte, v byte) []byte {
	first := PUBLISH<<4 | p.QoS<<1
	if p.Dup {
		first |= 8
	}
	if p.Retain {
		first |= 1
	}
	size := 2 + len(p.Topic) + len(p.Payload)
	if p.QoS > 0 {
		size += 2
	}
	var props []byte
	if v == V5 {
		props = appendProperties(nil, &p.Props)
		size += len(props)
	}
	b = append(b, first)
	b = appendVarint(b, uint32(size))
	b = appendStr(b, p.Topic)
	if p.QoS > 0 {
		b = appendU16(b, p.PacketID)
	}
	b = append(b, props...)
	return append(b, p.Payload...)
}

// Append implements Packet.
func (a *Ack) Append(b []byte, v byte) []byte {
	first := a.Kind << 4
	if a.Kind == PUBREL {
		first |= 2
	}
	if v != V5 || (a.ReasonCode == 0 && !hasAny(&a.Props)) {
		return append(b, first, 2, byte(a.PacketID>>8), byte(a.PacketID))
	}
	body := appendU16(nil, a.PacketID)
	body = append(body, a.ReasonCode)
	if hasAny(&a.Props) {
		body = appendProperties(body, &a.Props)
	}
	return frame(b, first, body)
}

func hasAny(p *Properties) bool {
	return p.present != 0 || len(p.User) > 0 || len(p.SubscriptionIDs) > 0
}

// Append implements Packet.
func (s *Subscribe) Append(b []byte, v byte) []byte {
	body := appendU16(nil, s.PacketID)
	if v == V5 {
		body = appendProperties(body, &s.Props)
	}
	for _, sub := range s.Subs {
		body = appendStr(body, sub.Filter)
		opts := sub.QoS
		if v == V5 {
			if sub.NoLocal {
				opts |= 4
			}
			if sub.RetainAsPublished {
				opts |= 8
			}
			opts |= sub.RetainHandling << 4
		}
		body = append(body, opts)
	}
	return frame(b, SUBSCRIBE<<4|2, body)
}

// Append implements Packet.
func (s *Suback) Append(b []byte, v byte) []byte {
	body := appendU16(nil, s.PacketID)
	if v == V5 {
		body = appendProperties(body, &s.Props)
	}
	for _, rc := range s.ReasonCodes {
		if v != V5 && rc >= 0x80 {
			rc = 0x80 // 3.1.1 knows only "failure"
		}
		body = append(body, rc)
	}
	return frame(b, SUBACK<<4, body)
}

// Append implements Packet.
func (u *Unsubscribe) Append(b []byte, v byte) []byte {
	body := appendU16(nil, u.PacketID)
	if v == V5 {
		body = appendProperties(body, &u.Props)
	}
	for _, f := range u.Filters {
		body = appendStr(body, f)
	}
	return frame(b, UNSUBSCRIBE<<4|2, body)
}

// Append implements Packet.
func (u *Unsuback) Append(b []byte, v byte) []byte {
	body := appendU16(nil, u.PacketID)
	if v == V5 {
		body = appendProperties(body, &u.Props)
		body = append(body, u.ReasonCodes...)
	}
	return frame(b, UNSUBACK<<4, body)
}

// Append implements Packet.
func (*Pingreq) Append(b []byte, _ byte) []byte { return append(b, PINGREQ<<4, 0) }

// Append implements Packet.
func (*Pingresp) Append(b []byte, _ byte) []byte { return append(b, PINGRESP<<4, 0) }

// Append implements Packet.
func (d *Disconnect) Append(b []byte, v byte) []byte {
	if v != V5 {
		return append(b, DISCONNECT<<4, 0)
	}
	body := []byte{d.ReasonCode}
	body = appendProperties(body, &d.Props)
	return frame(b, DISCONNECT<<4, body)
}

// Append implements Packet.
func (a *Auth) Append(b []byte, _ byte) []byte {
	body := []byte{a.ReasonCode}
	body = appendProperties(body, &a.Props)
	return frame(b, AUTH<<4, body)
}
