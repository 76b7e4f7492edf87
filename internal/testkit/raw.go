package testkit

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// RawConn is a hand-driven AMQP connection for sending what no client
// library would: bad headers, oversized frames, garbage.
type RawConn struct {
	t  testing.TB
	NC net.Conn
	FR *amqp091.FrameReader
}

// DialRaw opens a TCP connection to the server's AMQP port.
func (s *Server) DialRaw(t testing.TB) *RawConn {
	t.Helper()
	return DialRawAddr(t, s.AMQPAddr().String())
}

// DialRawAddr opens a TCP connection to any AMQP broker at addr.
func DialRawAddr(t testing.TB, addr string) *RawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &RawConn{t: t, NC: nc, FR: amqp091.NewFrameReader(bufio.NewReader(nc), 0)}
}

// Write sends raw bytes.
func (r *RawConn) Write(b []byte) {
	r.t.Helper()
	if _, err := r.NC.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

// Send sends a method frame.
func (r *RawConn) Send(channel uint16, m amqp091.Method) {
	r.t.Helper()
	r.Write(amqp091.AppendMethodFrame(nil, channel, m))
}

// Expect reads frames until a method frame and decodes it.
func (r *RawConn) Expect() amqp091.Method {
	r.t.Helper()
	for {
		f, err := r.FR.ReadFrame()
		if err != nil {
			r.t.Fatalf("reading frame: %v", err)
		}
		if f.Type != amqp091.FrameMethod {
			continue
		}
		m, err := amqp091.DecodeMethod(f.Payload)
		if err != nil {
			r.t.Fatal(err)
		}
		return m
	}
}

// Handshake logs in as guest with the given heartbeat and opens vhost "/"
// and channel 1.
func (r *RawConn) Handshake(heartbeat uint16) {
	r.t.Helper()
	r.Write(amqp091.ProtocolHeader[:])
	if _, ok := r.Expect().(*amqp091.ConnectionStart); !ok {
		r.t.Fatal("no connection.start")
	}
	r.Send(0, &amqp091.ConnectionStartOk{
		ClientProperties: amqp091.Table{"capabilities": amqp091.Table{"authentication_failure_close": true}},
		Mechanism:        "PLAIN", Response: "\x00guest\x00guest", Locale: "en_US",
	})
	tune, ok := r.Expect().(*amqp091.ConnectionTune)
	if !ok {
		r.t.Fatal("no connection.tune")
	}
	r.Send(0, &amqp091.ConnectionTuneOk{ChannelMax: tune.ChannelMax, FrameMax: tune.FrameMax, Heartbeat: heartbeat})
	r.Send(0, &amqp091.ConnectionOpen{VirtualHost: "/"})
	if _, ok := r.Expect().(*amqp091.ConnectionOpenOk); !ok {
		r.t.Fatal("no connection.open-ok")
	}
	r.Send(1, &amqp091.ChannelOpen{})
	if _, ok := r.Expect().(*amqp091.ChannelOpenOk); !ok {
		r.t.Fatal("no channel.open-ok")
	}
}
