package server_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/testkit"
)

// The MQTT side of the bad input: a TLS client hello on the plain
// MQTT port fails the handshake and is closed (it reads as a malformed
// CONNECT), plain MQTT on the MQTTS port fails the broker's handshake and
// is closed, and both ports keep serving.
func TestTLSAndPlainMQTTOnTheWrongPortAreClosedAndServingGoesOn(t *testing.T) {
	t.Parallel()
	pki := testkit.NewPKI(t)
	s := testkit.Start(t, pki.Option("none"))
	d := &net.Dialer{Timeout: wait}
	if c, err := tls.DialWithDialer(d, "tcp", s.MQTTAddr().String(), pki.ClientConfig()); err == nil {
		c.Close()
		t.Fatal("a TLS handshake succeeded on the plain MQTT port")
	}
	nc, err := net.Dial("tcp", s.MQTTSAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(wait))
	// An MQTT 3.1.1 CONNECT, client id "x".
	if _, err := nc.Write([]byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 30, 0, 1, 'x'}); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(nc)
	if err != nil && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("plain MQTT on the TLS port was not closed: %v", err)
	}
	if len(b) > 0 && b[0] == 0x20 {
		t.Fatal("plain MQTT on the TLS port got a CONNACK")
	}
	for _, url := range []string{s.MQTTURL, "ssl://" + s.MQTTSAddr().String()} {
		c, err := pahoTLS(url, "after-"+url[:3], "", pki.ClientConfig())
		if err != nil {
			t.Fatalf("%s after the bad connections: %v", url, err)
		}
		pahoRoundTrip(t, c, "after/"+url[:3])
		c.Disconnect(50)
	}
}
