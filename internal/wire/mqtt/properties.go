package mqtt

// Property identifiers (5.0 section 2.2.2.2).
const (
	PropPayloadFormat        = 0x01
	PropMessageExpiry        = 0x02
	PropContentType          = 0x03
	PropResponseTopic        = 0x08
	PropCorrelationData      = 0x09
	PropSubscriptionID       = 0x0B
	PropSessionExpiry        = 0x11
	PropAssignedClientID     = 0x12
	PropServerKeepAlive      = 0x13
	PropAuthMethod           = 0x15
	PropAuthData             = 0x16
	PropRequestProblemInfo   = 0x17
	PropWillDelay            = 0x18
	PropRequestResponseInfo  = 0x19
	PropResponseInfo         = 0x1A
	PropServerReference      = 0x1C
	PropReasonString         = 0x1F
	PropReceiveMaximum       = 0x21
	PropTopicAliasMaximum    = 0x22
	PropTopicAlias           = 0x23
	PropMaximumQoS           = 0x24
	PropRetainAvailable      = 0x25
	PropUserProperty         = 0x26
	PropMaximumPacketSize    = 0x27
	PropWildcardSubAvailable = 0x28
	PropSubIDAvailable       = 0x29
	PropSharedSubAvailable   = 0x2A
)

// UserProperty is a 5.0 user property (a string pair; keys may repeat).
type UserProperty struct{ Key, Value string }

// Properties are a packet's 5.0 properties. Which are present is recorded
// in a bitmask by identifier, so absent and zero differ without pointers.
type Properties struct {
	present uint64

	PayloadFormat        byte
	MessageExpiry        uint32
	ContentType          string
	ResponseTopic        string
	CorrelationData      []byte
	SubscriptionIDs      []uint32
	SessionExpiry        uint32
	AssignedClientID     string
	ServerKeepAlive      uint16
	AuthMethod           string
	AuthData             []byte
	RequestProblemInfo   byte
	WillDelay            uint32
	RequestResponseInfo  byte
	ResponseInfo         string
	ServerReference      string
	ReasonString         string
	ReceiveMaximum       uint16
	TopicAliasMaximum    uint16
	TopicAlias           uint16
	MaximumQoS           byte
	RetainAvailable      byte
	User                 []UserProperty
	MaximumPacketSize    uint32
	WildcardSubAvailable byte
	SubIDAvailable       byte
	SharedSubAvailable   byte
}

// Has reports whether property id is present.
func (p *Properties) Has(id byte) bool { return p.present&(1<<id) != 0 }

// Set marks property id present (after setting its field).
func (p *Properties) Set(id byte) { p.present |= 1 << id }

type propKind byte

const (
	kByte propKind = iota
	kU16
	kU32
	kVarint
	kString
	kBinary
	kPair
)

var propKinds = map[byte]propKind{
	PropPayloadFormat: kByte, PropMessageExpiry: kU32, PropContentType: kString, PropResponseTopic: kString,
	PropCorrelationData: kBinary, PropSubscriptionID: kVarint, PropSessionExpiry: kU32, PropAssignedClientID: kString,
	PropServerKeepAlive: kU16, PropAuthMethod: kString, PropAuthData: kBinary, PropRequestProblemInfo: kByte,
	PropWillDelay: kU32, PropRequestResponseInfo: kByte, PropResponseInfo: kString, PropServerReference: kString,
	PropReasonString: kString, PropReceiveMaximum: kU16, PropTopicAliasMaximum: kU16, PropTopicAlias: kU16,
	PropMaximumQoS: kByte, PropRetainAvailable: kByte, PropUserProperty: kPair, PropMaximumPacketSize: kU32,
	PropWildcardSubAvailable: kByte, PropSubIDAvailable: kByte, PropSharedSubAvailable: kByte,
}

// readProperties decodes a property list. A property other than user
// properties and subscription identifiers may appear once [MQTT-2.2.2-…].
func (d *dec) properties(p *Properties) {
	n := int(d.varint())
	if d.err != nil {
		return
	}
	end := d.off + n
	if n > d.remaining() {
		d.fail(malformed("property length %d exceeds the packet", n))
		return
	}
	for d.off < end && d.err == nil {
		id := d.byte1()
		kind, ok := propKinds[id]
		if !ok {
			d.fail(malformed("unknown property 0x%02X", id))
			return
		}
		if p.Has(id) && id != PropUserProperty && id != PropSubscriptionID {
			d.fail(protocolErr("property 0x%02X twice", id))
			return
		}
		p.Set(id)
		switch kind {
		case kByte:
			v := d.byte1()
			switch id {
			case PropPayloadFormat:
				p.PayloadFormat = v
			case PropRequestProblemInfo:
				p.RequestProblemInfo = v
			case PropRequestResponseInfo:
				p.RequestResponseInfo = v
			case PropMaximumQoS:
				p.MaximumQoS = v
			case PropRetainAvailable:
				p.RetainAvailable = v
			case PropWildcardSubAvailable:
				p.WildcardSubAvailable = v
			case PropSubIDAvailable:
				p.SubIDAvailable = v
			case PropSharedSubAvailable:
				p.SharedSubAvailable = v
			}
			if v > 1 && id != PropMaximumQoS {
				d.fail(protocolErr("property 0x%02X must be 0 or 1", id))
			}
		case kU16:
			v := d.u16()
			switch id {
			case PropServerKeepAlive:
				p.ServerKeepAlive = v
			case PropReceiveMaximum:
				p.ReceiveMaximum = v
				if v == 0 {
					d.fail(protocolErr("receive maximum 0"))
				}
			case PropTopicAliasMaximum:
				p.TopicAliasMaximum = v
			case PropTopicAlias:
				p.TopicAlias = v
			}
		case kU32:
			v := d.u32()
			switch id {
			case PropMessageExpiry:
				p.MessageExpiry = v
			case PropSessionExpiry:
				p.SessionExpiry = v
			case PropWillDelay:
				p.WillDelay = v
			case PropMaximumPacketSize:
				p.MaximumPacketSize = v
				if v == 0 {
					d.fail(protocolErr("maximum packet size 0"))
				}
			}
		case kVarint:
			v := d.varint()
			if v == 0 {
				d.fail(protocolErr("subscription identifier 0"))
			}
			p.SubscriptionIDs = append(p.SubscriptionIDs, v)
		case kString:
			v := d.str()
			switch id {
			case PropContentType:
				p.ContentType = v
			case PropResponseTopic:
				p.ResponseTopic = v
			case PropAssignedClientID:
				p.AssignedClientID = v
			case PropAuthMethod:
				p.AuthMethod = v
			case PropResponseInfo:
				p.ResponseInfo = v
			case PropServerReference:
				p.ServerReference = v
			case PropReasonString:
				p.ReasonString = v
			}
		case kBinary:
			v := append([]byte(nil), d.binary()...)
			if id == PropCorrelationData {
				p.CorrelationData = v
			} else {
				p.AuthData = v
			}
		case kPair:
			k := d.str()
			v := d.str()
			p.User = append(p.User, UserProperty{k, v})
		}
	}
	if d.err == nil && d.off != end {
		d.fail(malformed("property list overruns its length"))
	}
}

// appendProperties encodes p with its length prefix.
func appendProperties(b []byte, p *Properties) []byte {
	var body []byte
	add := func(id byte) bool { return p.Has(id) }
	if add(PropPayloadFormat) {
		body = append(body, PropPayloadFormat, p.PayloadFormat)
	}
	if add(PropMessageExpiry) {
		body = appendU32(append(body, PropMessageExpiry), p.MessageExpiry)
	}
	if add(PropContentType) {
		body = appendStr(append(body, PropContentType), p.ContentType)
	}
	if add(PropResponseTopic) {
		body = appendStr(append(body, PropResponseTopic), p.ResponseTopic)
	}
	if add(PropCorrelationData) {
		body = appendBinary(append(body, PropCorrelationData), p.CorrelationData)
	}
	for _, id := range p.SubscriptionIDs {
		body = appendVarint(append(body, PropSubscriptionID), id)
	}
	if add(PropSessionExpiry) {
		body = appendU32(append(body, PropSessionExpiry), p.SessionExpiry)
	}
	if add(PropAssignedClientID) {
		body = appendStr(append(body, PropAssignedClientID), p.AssignedClientID)
	}
	if add(PropServerKeepAlive) {
		body = appendU16(append(body, PropServerKeepAlive), p.ServerKeepAlive)
	}
	if add(PropAuthMethod) {
		body = appendStr(append(body, PropAuthMethod), p.AuthMethod)
	}
	if add(PropAuthData) {
		body = appendBinary(append(body, PropAuthData), p.AuthData)
	}
	if add(PropRequestProblemInfo) {
		body = append(body, PropRequestProblemInfo, p.RequestProblemInfo)
	}
	if add(PropWillDelay) {
		body = appendU32(append(body, PropWillDelay), p.WillDelay)
	}
	if add(PropRequestResponseInfo) {
		body = append(body, PropRequestResponseInfo, p.RequestResponseInfo)
	}
	if add(PropResponseInfo) {
		body = appendStr(append(body, PropResponseInfo), p.ResponseInfo)
	}
	if add(PropServerReference) {
		body = appendStr(append(body, PropServerReference), p.ServerReference)
	}
	if add(PropReasonString) {
		body = appendStr(append(body, PropReasonString), p.ReasonString)
	}
	if add(PropReceiveMaximum) {
		body = appendU16(append(body, PropReceiveMaximum), p.ReceiveMaximum)
	}
	if add(PropTopicAliasMaximum) {
		body = appendU16(append(body, PropTopicAliasMaximum), p.TopicAliasMaximum)
	}
	if add(PropTopicAlias) {
		body = appendU16(append(body, PropTopicAlias), p.TopicAlias)
	}
	if add(PropMaximumQoS) {
		body = append(body, PropMaximumQoS, p.MaximumQoS)
	}
	if add(PropRetainAvailable) {
		body = append(body, PropRetainAvailable, p.RetainAvailable)
	}
	for _, u := range p.User {
		body = appendStr(appendStr(append(body, PropUserProperty), u.Key), u.Value)
	}
	if add(PropMaximumPacketSize) {
		body = appendU32(append(body, PropMaximumPacketSize), p.MaximumPacketSize)
	}
	if add(PropWildcardSubAvailable) {
		body = append(body, PropWildcardSubAvailable, p.WildcardSubAvailable)
	}
	if add(PropSubIDAvailable) {
		body = append(body, PropSubIDAvailable, p.SubIDAvailable)
	}
	if add(PropSharedSubAvailable) {
		body = append(body, PropSharedSubAvailable, p.SharedSubAvailable)
	}
	b = appendVarint(b, uint32(len(body)))
	return append(b, body...)
}
