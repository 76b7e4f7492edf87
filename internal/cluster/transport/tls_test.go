package transport

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// testTLS returns a config holding a fresh self-signed ECDSA certificate
// for 127.0.0.1 that is also the only trusted CA, requiring client
// certificates: every node of a test cluster shares it.
func testTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tern test cluster"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}
}

// TestTLS: nodes sharing a TLS config exchange Raft messages and
// requests; a node without TLS, or with another CA, is refused with a
// logged TLS reason.
func TestTLS(t *testing.T) {
	t.Parallel()
	cfg := testTLS(t)
	withTLS := func(c *TCPConfig) { c.TLS = cfg }
	n1 := startNode(t, 1, "", withTLS)
	n2 := startNode(t, 2, "", withTLS)
	meshed(n1, n2)
	waitConnected(t, n1, n2)
	n1.SendRaft(2, 3, []*raftpb.Message{msg(1, 2, 1, []byte("over tls"))})
	waitFor(t, "raft over TLS", n2.rec.signal, func() bool { return n2.rec.count(1, 3) == 1 })
	if got, err := n2.Request(context.Background(), 1, kindEcho, []byte("tls")); err != nil || string(got) != "2->1:tls" {
		t.Fatalf("request over TLS: %q, %v", got, err)
	}

	plain := startNode(t, 3, "", nil) // dials nobody (highest id); node 2 is told about it below
	other := startNode(t, 4, "", func(c *TCPConfig) { c.TLS = testTLS(t) })
	for _, n := range []*node{plain, other} {
		n.SetPeer(2, n2.Addr().String())
		n2.SetPeer(n.cfg.Self, n.Addr().String())
	}
	// Node 2 dials both: the plain one sees a TLS hello where a tern hello
	// belongs, and node 2 fails to verify the other CA's certificate.
	waitFor(t, "plain node refuses TLS", nil, func() bool {
		return plain.log.lineWith("cluster peer refused", "not a tern cluster peer") != ""
	})
	waitFor(t, "node 2 refuses the foreign certificate", nil, func() bool {
		return n2.log.lineWith("cluster handshake failed", "level=WARN", "peer=4", "TLS handshake") != ""
	})
	if connected(n2, 3) || connected(n2, 4) {
		t.Fatal("a node outside the TLS trust got connected")
	}
}
