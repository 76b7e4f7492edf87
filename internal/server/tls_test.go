package server_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/testkit"
)

const wait = 5 * time.Second

func amqpsURL(s *testkit.Server, userinfo string) string {
	return "amqps://" + userinfo + s.AMQPSAddr().String() + "/"
}

// roundTrip declares a queue, publishes one message to it and gets it back.
func roundTrip(t *testing.T, c *amqp.Connection, queue string) {
	t.Helper()
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if _, err := ch.QueueDeclare(queue, false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish("", queue, false, false, amqp.Publishing{Body: []byte("over tls")}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, wait, "the message", func() bool {
		m, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatal(err)
		}
		return ok && string(m.Body) == "over tls"
	})
}

func TestAMQPSWithAmqp091Go(t *testing.T) {
	t.Parallel()
	pki := testkit.NewPKI(t)
	s := testkit.Start(t, pki.Option("none"))
	c, err := amqp.DialTLS(amqpsURL(s, "guest:guest@"), pki.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st := c.ConnectionState()
	if st.Version != tls.VersionTLS13 || st.PeerCertificates[0].SerialNumber.Cmp(pki.Server.Cert.SerialNumber) != 0 {
		t.Errorf("TLS version %x, serial %v", st.Version, st.PeerCertificates[0].SerialNumber)
	}
	roundTrip(t, c, "q-amqps")
	// The plain listener serves beside it.
	roundTrip(t, s.Dial(t), "q-plain")
	// A client that does not trust the CA is refused by its own check.
	if _, err := amqp.DialTLS(amqpsURL(s, "guest:guest@"), &tls.Config{ServerName: "localhost"}); err == nil {
		t.Error("a client without the CA trusted the server")
	}
}

func TestTLSBelow12IsRefused(t *testing.T) {
	t.Parallel()
	pki := testkit.NewPKI(t)
	s := testkit.Start(t, pki.Option("none"))
	for _, addr := range []net.Addr{s.AMQPSAddr(), s.MQTTSAddr(), s.HTTPSAddr(), s.MQTTWSSAddr()} {
		for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
			cfg := pki.ClientConfig()
			cfg.MinVersion, cfg.MaxVersion = v, v
			d := &net.Dialer{Timeout: wait}
			c, err := tls.DialWithDialer(d, "tcp", addr.String(), cfg)
			if err == nil {
				c.Close()
				t.Errorf("%s: TLS version %x accepted", addr, v)
			}
		}
		cfg := pki.ClientConfig()
		cfg.MaxVersion = tls.VersionTLS12
		c, err := tls.Dial("tcp", addr.String(), cfg)
		if err != nil {
			t.Errorf("%s: TLS 1.2 refused: %v", addr, err)
			continue
		}
		c.Close()
	}
}

func TestPlainAMQPOnTheTLSPortIsClosedAndServingGoesOn(t *testing.T) {
	t.Parallel()
	pki := testkit.NewPKI(t)
	s := testkit.Start(t, pki.Option("none"))
	nc, err := net.Dial("tcp", s.AMQPSAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(wait))
	if _, err := nc.Write([]byte("AMQP\x00\x00\x09\x01")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(nc); err != nil && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("the broker did not close the connection: %v", err)
	}
	nc.Close()
	// A TLS client hello on the plain port: answered with the AMQP header, closed.
	raw, err := tls.Dial("tcp", s.AMQPAddr().String(), pki.ClientConfig())
	if err == nil {
		raw.Close()
		t.Fatal("a TLS handshake succeeded on the plain port")
	}
	c, err := amqp.DialTLS(amqpsURL(s, "guest:guest@"), pki.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, "q-after")
}

// withUsers defines guest and the users of client certificates.
func withUsers(names ...string) testkit.Option {
	return func(c *config.Config) {
		c.Users = []config.User{{Name: "guest", Password: "guest", LoopbackOnly: true, VHosts: []string{"*"}, Tags: []string{"administrator"}}}
		for _, n := range names {
			c.Users = append(c.Users, config.User{Name: n, Password: "unused-" + n, VHosts: []string{"/"}})
		}
	}
}

func TestExternalAuthWithAClientCertificate(t *testing.T) {
	t.Parallel()
	pki := testkit.NewPKI(t)
	s := testkit.Start(t, pki.Option("optional"), withUsers("alice"))
	external := func(certs ...tls.Certificate) (*amqp.Connection, error) {
		return amqp.DialConfig(amqpsURL(s, ""), amqp.Config{
			SASL:            []amqp.Authentication{&amqp.ExternalAuth{}},
			TLSClientConfig: pki.ClientConfig(certs...),
		})
	}
	c, err := external(pki.Client(t, "alice"))
	if err != nil {
		t.Fatalf("EXTERNAL as alice: %v", err)
	}
	roundTrip(t, c, "q-alice")
	c.Close()
	// DialTLS_ExternalAuth, the library's shortcut, works the same way.
	c, err = amqp.DialTLS_ExternalAuth(amqpsURL(s, ""), pki.ClientConfig(pki.Client(t, "alice")))
	if err != nil {
		t.Fatalf("DialTLS_ExternalAuth: %v", err)
	}
	c.Close()
	// A certificate naming a user that does not exist: refused.
	if c, err := external(pki.Client(t, "mallory")); err == nil {
		c.Close()
		t.Error("EXTERNAL as a user that does not exist was accepted")
	} else if !strings.Contains(err.Error(), "403") && !errors.Is(err, amqp.ErrCredentials) {
		t.Errorf("mallory: %v, want an access refusal", err)
	}
	// Without a certificate EXTERNAL is not offered.
	if c, err := external(); err == nil {
		c.Close()
		t.Error("EXTERNAL without a client certificate was accepted")
	}
	// The plain port never offers EXTERNAL.
	if c, err := amqp.DialConfig(s.URL, amqp.Config{SASL: []amqp.Authentication{&amqp.ExternalAuth{}}}); err == nil {
		c.Close()
		t.Error("EXTERNAL accepted on the plain port")
	}
	// A certificate from another CA fails the handshake.
	other := testkit.NewPKI(t)
	if c, err := external(other.Client(t, "alice")); err == nil {
		c.Close()
		t.Error("a certificate from an unknown CA was accepted")
	}
	// Passwords still work beside certificates with client_auth optional.
	c, err = amqp.DialTLS(amqpsURL(s, "guest:guest@"), pki.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestClientCertificateRequired(t *testing.T) {
	t.Parallel()
	pki := testkit.NewPKI(t)
	s := testkit.Start(t, pki.Option("required"), withUsers("alice"))
	if c, err := amqp.DialTLS(amqpsURL(s, "guest:guest@"), pki.ClientConfig()); err == nil {
		c.Close()
		t.Fatal("a client without a certificate connected with client_auth required")
	}
	c, err := amqp.DialTLS(amqpsURL(s, "guest:guest@"), pki.ClientConfig(pki.Client(t, "alice")))
	if err != nil {
		t.Fatalf("password login with a certificate: %v", err)
	}
	c.Close()
}

// pahoTLS connects a Paho 3.1.1 client to url with cfg.
func pahoTLS(url, id, user string, cfg *tls.Config) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetProtocolVersion(4).SetTLSConfig(cfg).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(wait)
	if user != "" {
		o.SetUsername(user).SetPassword(user)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(wait) {
		return nil, errors.New("connect timed out")
	}
	return c, tok.Error()
}

func pahoRoundTrip(t *testing.T, c paho.Client, topic string) {
	t.Helper()
	got := make(chan string, 1)
	if tok := c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	if tok := c.Publish(topic, 1, false, "hello"); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case m := <-got:
		if m != "hello" {
			t.Fatalf("got %q", m)
		}
	case <-time.After(wait):
		t.Fatal("no message")
	}
}

func TestMQTTSAndWSSWithPaho(t *testing.T) {
	t.Parallel()
	pki := testkit.NewPKI(t)
	s := testkit.Start(t, pki.Option("none"))
	for _, url := range []string{"ssl://" + s.MQTTSAddr().String(), "wss://" + s.MQTTWSSAddr().String() + "/ws"} {
		c, err := pahoTLS(url, "dev-"+url[:3], "", pki.ClientConfig())
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		pahoRoundTrip(t, c, "sensors/"+url[:3])
		c.Disconnect(50)
	}
}

func TestMQTTCertificateLogin(t *testing.T) {
	t.Parallel()
	pki := testkit.NewPKI(t)
	s := testkit.Start(t, pki.Option("optional"), withUsers("device-1"), func(c *config.Config) {
		c.TLS.MQTTCertLogin = true
		c.MQTTAllowAnonymous = false // a login without a user name can only be the certificate's
	})
	cert := pki.Client(t, "device-1")
	for _, url := range []string{"ssl://" + s.MQTTSAddr().String(), "wss://" + s.MQTTWSSAddr().String() + "/ws"} {
		c, err := pahoTLS(url, "d1", "", pki.ClientConfig(cert))
		if err != nil {
			t.Fatalf("%s: certificate login: %v", url, err)
		}
		pahoRoundTrip(t, c, "devices/1")
		c.Disconnect(50)
		// No certificate and no user name: anonymous, which is off.
		if c, err := pahoTLS(url, "d2", "", pki.ClientConfig()); err == nil {
			c.Disconnect(50)
			t.Errorf("%s: no certificate, no user name: connected", url)
		}
		// A certificate naming no user: refused.
		if c, err := pahoTLS(url, "d3", "", pki.ClientConfig(pki.Client(t, "device-x"))); err == nil {
			c.Disconnect(50)
			t.Errorf("%s: a certificate for an unknown user connected", url)
		}
	}
}

func TestCertificateReloadKeepsOpenConnections(t *testing.T) {
	t.Parallel()
	pki := testkit.NewPKI(t)
	s := testkit.Start(t, pki.Option("none"), func(c *config.Config) { c.TLS.ReloadInterval = config.Duration(20 * time.Millisecond) })
	first := pki.Server.Cert.SerialNumber
	before, err := amqp.DialTLS(amqpsURL(s, "guest:guest@"), pki.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	mqttBefore, err := pahoTLS("ssl://"+s.MQTTSAddr().String(), "kept", "", pki.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer mqttBefore.Disconnect(50)

	// Renewed files are picked up by the poll of their modification times.
	second := pki.Renew(t).SerialNumber
	testkit.Eventually(t, wait, "the renewed certificate on new connections", func() bool {
		return s.TLSSerial().Cmp(second) == 0
	})
	after, err := amqp.DialTLS(amqpsURL(s, "guest:guest@"), pki.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if got := after.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(second) != 0 {
		t.Fatalf("new connection got serial %v, want the renewed %v", got, second)
	}
	if got := before.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(first) != 0 {
		t.Fatalf("old connection reports %v", got)
	}
	roundTrip(t, before, "q-before")
	roundTrip(t, after, "q-after")
	pahoRoundTrip(t, mqttBefore, "kept/topic")

	// An explicit reload (SIGHUP's path) does the same.
	third := pki.Renew(t).SerialNumber
	if err := s.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	if s.TLSSerial().Cmp(third) != 0 {
		t.Fatalf("serial %v after ReloadTLS, want %v", s.TLSSerial(), third)
	}
	roundTrip(t, before, "q-before-2")
}

func TestHTTPSServesTheAPI(t *testing.T) {
	t.Parallel()
	pki := testkit.NewPKI(t)
	s := testkit.Start(t, pki.Option("none"))
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: pki.ClientConfig()}, Timeout: wait}
	resp, err := cl.Get("https://" + s.HTTPSAddr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Fatalf("GET /healthz over HTTPS: %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
}
