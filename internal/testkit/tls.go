package testkit

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/tern-broker/tern/internal/certs"
	"github.com/tern-broker/tern/internal/config"
)

// PKI is a throw-away CA with a server certificate for 127.0.0.1 and
// localhost, written to a temporary directory, for TLS tests.
type PKI struct {
	Dir                       string
	CAFile, CertFile, KeyFile string
	CA                        certs.Issued
	Server                    certs.Issued
	Pool                      *x509.CertPool // trusts CA
}

// NewPKI makes the CA and the server certificate.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	ca, err := certs.NewCA(certs.Request{CommonName: "Tern test CA"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := &PKI{Dir: dir, CA: ca, CAFile: filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server-key.pem"), Pool: x509.NewCertPool()}
	if err := os.WriteFile(p.CAFile, ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	p.Pool.AddCert(ca.Cert)
	p.Renew(t)
	return p
}

// Renew issues a new server certificate (a new serial) and writes it over
// the old files, as an operator renewing it would.
func (p *PKI) Renew(t testing.TB) *x509.Certificate {
	t.Helper()
	s, err := certs.Issue(p.CA, certs.Request{CommonName: "localhost", DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteFiles(p.CertFile, p.KeyFile); err != nil {
		t.Fatal(err)
	}
	p.Server = s
	return s.Cert
}

// Client issues a client certificate for cn, written to Dir/<cn>.pem and
// Dir/<cn>-key.pem, and returns it ready for a tls.Config.
func (p *PKI) Client(t testing.TB, cn string) tls.Certificate {
	t.Helper()
	c, err := certs.Issue(p.CA, certs.Request{CommonName: cn, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(p.Dir, cn+".pem"), filepath.Join(p.Dir, cn+"-key.pem")
	if err := c.WriteFiles(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// ClientConfig trusts the CA and presents the given client certificates.
func (p *PKI) ClientConfig(clientCerts ...tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: p.Pool, ServerName: "localhost", Certificates: clientCerts}
}

// Option turns the server's TLS listeners on (on 127.0.0.1 ports the
// kernel picks) with this PKI, checking client certificates as clientAuth
// says (none, optional or required).
func (p *PKI) Option(clientAuth string) Option {
	return func(c *config.Config) {
		c.TLS.CertFile, c.TLS.KeyFile, c.TLS.CAFile, c.TLS.ClientAuth = p.CertFile, p.KeyFile, p.CAFile, clientAuth
		c.AMQPSAddr, c.MQTTSAddr, c.MQTTWSSAddr, c.HTTPSAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	}
}
