package mqtt

import (
	"bufio"
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func roundTrip(t *testing.T, p Packet, v byte) Packet {
	t.Helper()
	raw := p.Append(nil, v)
	got, err := NewReader(bufio.NewReader(bytes.NewReader(raw)), 0).ReadPacket(v)
	if err != nil {
		t.Fatalf("%T: %v", p, err)
	}
	return got
}

func TestPacketsRoundTrip(t *testing.T) {
	t.Parallel()
	props := Properties{ContentType: "application/json", ResponseTopic: "reply/x", CorrelationData: []byte{1, 2},
		MessageExpiry: 60, User: []UserProperty{{"a", "b"}, {"a", "c"}}, SubscriptionIDs: []uint32{7, 300}}
	props.Set(PropContentType)
	props.Set(PropResponseTopic)
	props.Set(PropCorrelationData)
	props.Set(PropMessageExpiry)
	props.Set(PropUserProperty)
	props.Set(PropSubscriptionID)
	cases := []struct {
		p Packet
		v byte
	}{
		{&Connect{ProtocolName: "MQTT", Level: V311, CleanStart: true, KeepAlive: 30, ClientID: "dev-1",
			Will: true, WillQoS: 1, WillTopic: "status/dev-1", WillPayload: []byte("offline"),
			HasUsername: true, Username: "u", HasPassword: true, Password: []byte("p")}, V311},
		{&Publish{QoS: 1, Topic: "a/b", PacketID: 9, Payload: []byte("x"), Props: props}, V5},
		{&Publish{QoS: 2, Dup: true, Retain: true, Topic: "a/b", PacketID: 9, Payload: []byte("x")}, V311},
		{&Ack{Kind: PUBREL, PacketID: 4}, V311},
		{&Ack{Kind: PUBACK, PacketID: 4, ReasonCode: NoMatchingSubscribers}, V5},
		{&Subscribe{PacketID: 3, Subs: []Subscription{{Filter: "a/+", QoS: 2, NoLocal: true, RetainHandling: 2}}}, V5},
		{&Suback{PacketID: 3, ReasonCodes: []byte{0, 1, 0x80}}, V311},
		{&Unsubscribe{PacketID: 5, Filters: []string{"a/#", "b"}}, V5},
		{&Unsuback{PacketID: 5, ReasonCodes: []byte{0, NoSubscriptionExisted}}, V5},
		{&Disconnect{ReasonCode: SessionTakenOver}, V5},
		{&Pingreq{}, V311},
	}
	for _, c := range cases {
		got := roundTrip(t, c.p, c.v)
		if !reflect.DeepEqual(got, c.p) {
			t.Errorf("%T:\n got %+v\nwant %+v", c.p, got, c.p)
		}
	}
}

func TestMalformedPacketsGetReasonCodes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		raw  []byte
		code byte
	}{
		{"qos 3", []byte{0x36, 5, 0, 1, 'a', 0, 1}, MalformedPacket},
		{"wildcard topic", []byte{0x30, 3, 0, 1, '+'}, TopicNameInvalid},
		{"subscribe flags", []byte{0x80, 6, 0, 1, 0, 1, 'a', 0}, MalformedPacket},
		{"bad protocol", append([]byte{0x10, 10}, []byte{0, 4, 'M', 'Q', 'T', 'X', 4, 2, 0, 0}...), UnsupportedProtocol},
		{"varint too long", []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x7f}, MalformedPacket},
		{"trailing bytes", []byte{0xc0, 1, 0}, MalformedPacket},
	}
	for _, c := range cases {
		_, err := NewReader(bufio.NewReader(bytes.NewReader(c.raw)), 0).ReadPacket(V311)
		var e *Error
		if !errors.As(err, &e) || e.Code != c.code {
			t.Errorf("%s: got %v, want code 0x%02X", c.name, err, c.code)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, p := range []Packet{
		&Connect{ProtocolName: "MQTT", Level: V5, KeepAlive: 10, ClientID: "c", Props: Properties{SessionExpiry: 10, present: 1 << PropSessionExpiry}},
		&Publish{QoS: 1, Topic: "t", PacketID: 1, Payload: []byte("p")},
		&Subscribe{PacketID: 1, Subs: []Subscription{{Filter: "#", QoS: 1}}},
	} {
		for _, v := range []byte{V311, V5} {
			f.Add(p.Append(nil, v), v)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte, v byte) {
		if v != V311 && v != V5 {
			v = V311
		}
		p, err := NewReader(bufio.NewReader(bytes.NewReader(raw)), 1<<16).ReadPacket(v)
		if err != nil {
			return
		}
		again := p.Append(nil, v)
		p2, err := NewReader(bufio.NewReader(bytes.NewReader(again)), 0).ReadPacket(v)
		if err != nil {
			t.Fatalf("%T re-decoding: %v", p, err)
		}
		if !bytes.Equal(p2.Append(nil, v), again) {
			t.Fatalf("%T does not round-trip", p)
		}
	})
}
