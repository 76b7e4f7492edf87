package mqtt

import "fmt"

// Reason codes (MQTT 5.0 section 2.4); 3.1.1 return codes are mapped where
// a 3.1.1 packet needs one.
const (
	Success                  byte = 0x00
	GrantedQoS1              byte = 0x01
	GrantedQoS2              byte = 0x02
	DisconnectWithWill       byte = 0x04
	NoMatchingSubscribers    byte = 0x10
	NoSubscriptionExisted    byte = 0x11
	UnspecifiedError         byte = 0x80
	MalformedPacket          byte = 0x81
	ProtocolError            byte = 0x82
	ImplementationSpecific   byte = 0x83
	UnsupportedProtocol      byte = 0x84
	ClientIDNotValid         byte = 0x85
	BadUserNameOrPassword    byte = 0x86
	NotAuthorized            byte = 0x87
	ServerUnavailable        byte = 0x88
	ServerBusy               byte = 0x89
	ServerShuttingDown       byte = 0x8B
	BadAuthMethod            byte = 0x8C
	KeepAliveTimeout         byte = 0x8D
	SessionTakenOver         byte = 0x8E
	TopicFilterInvalid       byte = 0x8F
	TopicNameInvalid         byte = 0x90
	PacketIDInUse            byte = 0x91
	PacketIDNotFound         byte = 0x92
	ReceiveMaximumExceeded   byte = 0x93
	TopicAliasInvalid        byte = 0x94
	PacketTooLarge           byte = 0x95
	QuotaExceeded            byte = 0x97
	PayloadFormatInvalid     byte = 0x99
	RetainNotSupported       byte = 0x9A
	QoSNotSupported          byte = 0x9B
	SharedSubsNotSupported   byte = 0x9E
	SubIDsNotSupported       byte = 0xA1
	WildcardSubsNotSupported byte = 0xA2
)

// 3.1.1 CONNACK return codes (3.1.1 section 3.2.2.3).
const (
	V3Accepted            byte = 0
	V3BadProtocolVersion  byte = 1
	V3IdentifierRejected  byte = 2
	V3ServerUnavailable   byte = 3
	V3BadUserNameOrPasswd byte = 4
	V3NotAuthorized       byte = 5
)

// V3ConnackCode maps a 5.0 CONNACK reason code to the 3.1.1 return code.
func V3ConnackCode(reason byte) byte {
	switch reason {
	case Success:
		return V3Accepted
	case UnsupportedProtocol:
		return V3BadProtocolVersion
	case ClientIDNotValid:
		return V3IdentifierRejected
	case BadUserNameOrPassword:
		return V3BadUserNameOrPasswd
	case NotAuthorized:
		return V3NotAuthorized
	}
	return V3ServerUnavailable
}

var v3ToReason = map[byte]byte{
	V3Accepted: Success, V3BadProtocolVersion: UnsupportedProtocol, V3IdentifierRejected: ClientIDNotValid,
	V3ServerUnavailable: ServerUnavailable, V3BadUserNameOrPasswd: BadUserNameOrPassword, V3NotAuthorized: NotAuthorized,
}

// Error is a protocol error with the reason code to answer it with.
type Error struct {
	Code byte
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("mqtt: 0x%02X %s", e.Code, e.Msg) }

func malformed(format string, args ...any) *Error {
	return &Error{Code: MalformedPacket, Msg: fmt.Sprintf(format, args...)}
}

func protocolErr(format string, args ...any) *Error {
	return &Error{Code: ProtocolError, Msg: fmt.Sprintf(format, args...)}
}
