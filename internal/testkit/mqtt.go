package testkit

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// RawMQTT is a hand-driven MQTT connection for what well-behaved client
// libraries will not do: vanish without DISCONNECT, stay silent past the
// keep-alive, send malformed packets.
type RawMQTT struct {
	t  testing.TB
	NC net.Conn
	R  *wire.Reader
	V  byte
}

// DialMQTT opens a TCP connection to the server's MQTT port.
func DialMQTT(t testing.TB, s *Server) *RawMQTT {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(s.MQTTURL, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &RawMQTT{t: t, NC: nc, R: wire.NewReader(bufio.NewReader(nc), 0), V: wire.V311}
}

// Send writes a packet.
func (r *RawMQTT) Send(p wire.Packet) {
	r.t.Helper()
	if _, err := r.NC.Write(p.Append(nil, r.V)); err != nil {
		r.t.Fatal(err)
	}
}

// Expect reads the next packet.
func (r *RawMQTT) Expect() wire.Packet {
	r.t.Helper()
	p, err := r.R.ReadPacket(r.V)
	if err != nil {
		r.t.Fatalf("reading MQTT packet: %v", err)
	}
	return p
}

// Connect sends a 3.1.1 CONNECT (with a will if willTopic is set) and
// expects CONNACK accepted.
func (r *RawMQTT) Connect(clientID, willTopic, willPayload string) {
	r.t.Helper()
	c := &wire.Connect{ProtocolName: "MQTT", Level: r.V, CleanStart: true, KeepAlive: 60, ClientID: clientID}
	if willTopic != "" {
		c.Will, c.WillQoS, c.WillTopic, c.WillPayload = true, 1, willTopic, []byte(willPayload)
	}
	r.Send(c)
	ack, ok := r.Expect().(*wire.Connack)
	if !ok || ack.ReasonCode != wire.Success {
		r.t.Fatalf("CONNACK %+v", ack)
	}
}

// ConnectKeepAlive connects with a keep-alive of secs seconds.
func (r *RawMQTT) ConnectKeepAlive(clientID string, secs uint16) {
	r.t.Helper()
	r.Send(&wire.Connect{ProtocolName: "MQTT", Level: r.V, CleanStart: true, KeepAlive: secs, ClientID: clientID})
	if ack, ok := r.Expect().(*wire.Connack); !ok || ack.ReasonCode != wire.Success {
		r.t.Fatalf("CONNACK %+v", ack)
	}
}
