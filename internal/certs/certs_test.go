package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type files struct{ dir, ca, cert, key string }

func newFiles(t *testing.T) (files, Issued) {
	t.Helper()
	dir := t.TempDir()
	f := files{dir, filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")}
	ca, err := NewCA(Request{CommonName: "test CA"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteFiles(f.ca, filepath.Join(dir, "ca-key.pem")); err != nil {
		t.Fatal(err)
	}
	issue(t, ca, f)
	return f, ca
}

func issue(t *testing.T, ca Issued, f files) *x509.Certificate {
	t.Helper()
	s, err := Issue(ca, Request{CommonName: "localhost", DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteFiles(f.cert, f.key); err != nil {
		t.Fatal(err)
	}
	return s.Cert
}

func TestIssuedCertificatesVerify(t *testing.T) {
	t.Parallel()
	f, ca := newFiles(t)
	loaded, err := LoadIssued(f.ca, filepath.Join(f.dir, "ca-key.pem"))
	if err != nil || !loaded.Cert.Equal(ca.Cert) {
		t.Fatalf("LoadIssued: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	srv, _ := readCert(f.cert)
	if _, err := srv.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err != nil {
		t.Errorf("server certificate: %v", err)
	}
	cl, err := Issue(ca, Request{CommonName: "alice", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	if _, err := cl.Cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "alice"}); err == nil {
		t.Error("a client certificate verified as a server one")
	}
	if fi, err := os.Stat(f.key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v %v", fi.Mode(), err)
	}
	if _, err := Issue(ca, Request{}); err == nil {
		t.Error("a certificate without any name was issued")
	}
}

func TestNewNamesTheBadFile(t *testing.T) {
	t.Parallel()
	f, _ := newFiles(t)
	garbage := filepath.Join(f.dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{CertFile: garbage, KeyFile: f.key}, garbage},
		{Options{CertFile: f.cert, KeyFile: garbage}, garbage},
		{Options{CertFile: f.cert, KeyFile: filepath.Join(f.dir, "missing.pem")}, "missing.pem"},
		{Options{CertFile: f.ca, KeyFile: f.key}, "does not match"},
		{Options{CertFile: f.cert, KeyFile: f.key, CAFile: garbage, ClientAuth: ClientAuthRequired}, garbage},
		{Options{CertFile: f.cert, KeyFile: f.key, ClientAuth: ClientAuthRequired}, "needs ca_file"},
		{Options{CertFile: f.cert, KeyFile: f.key, MinVersion: tls.VersionTLS11}, "before 1.2"},
	} {
		if _, err := New(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
	}
}

// handshakeSerial shakes hands with a server on r's config and returns
// the serial the client saw.
func handshakeSerial(t *testing.T, r *Reloader, pool *x509.CertPool) string {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	srv := tls.Server(a, r.ServerConfig())
	go func() { _ = srv.Handshake() }()
	cl := tls.Client(b, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err := cl.Handshake(); err != nil {
		t.Fatal(err)
	}
	return cl.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

func TestReloadAndWatch(t *testing.T) {
	t.Parallel()
	f, ca := newFiles(t)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	r, err := New(Options{CertFile: f.cert, KeyFile: f.key})
	if err != nil {
		t.Fatal(err)
	}
	first := r.Serial().String()
	if got := handshakeSerial(t, r, pool); got != first {
		t.Fatalf("handshake serial %s, want %s", got, first)
	}
	second := issue(t, ca, f).SerialNumber.String()
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := handshakeSerial(t, r, pool); got != second {
		t.Fatalf("after Reload: %s, want %s", got, second)
	}

	// A broken key keeps the previous certificate in use.
	if err := os.WriteFile(f.key, []byte("broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); err == nil {
		t.Fatal("a broken key reloaded")
	}
	if got := handshakeSerial(t, r, pool); got != second {
		t.Fatalf("after a failed reload: %s, want %s", got, second)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Watch(ctx, 5*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	third := issue(t, ca, f).SerialNumber.String()
	deadline := time.Now().Add(5 * time.Second)
	for r.Serial().String() != third {
		if time.Now().After(deadline) {
			t.Fatal("Watch did not pick the new files up")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := handshakeSerial(t, r, pool); got != third {
		t.Fatalf("after Watch: %s, want %s", got, third)
	}
}

func TestNaming(t *testing.T) {
	t.Parallel()
	u, _ := url.Parse("spiffe://example.org/device/7")
	c := &x509.Certificate{DNSNames: []string{"a.example", "b.example"}, EmailAddresses: []string{"dev@example.org"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 7)}, URIs: []*url.URL{u}}
	c.Subject.CommonName = "alice"
	for _, tc := range []struct {
		n    Naming
		want string
	}{
		{Naming{}, "alice"},
		{Naming{From: FromCommonName}, "alice"},
		{Naming{From: FromSAN}, "a.example"},
		{Naming{From: FromSAN, SANIndex: 1}, "b.example"},
		{Naming{From: FromSAN, SANType: SANEmail}, "dev@example.org"},
		{Naming{From: FromSAN, SANType: SANIP}, "127.0.0.7"},
		{Naming{From: FromSAN, SANType: SANURI}, "spiffe://example.org/device/7"},
		{Naming{From: FromSAN, SANIndex: 2}, ""},
	} {
		got, err := tc.n.Name(c)
		if got != tc.want || (tc.want == "") != (err != nil) {
			t.Errorf("%+v: %q %v, want %q", tc.n, got, err, tc.want)
		}
	}
	if _, err := (Naming{}).Name(&x509.Certificate{}); err == nil {
		t.Error("a certificate without a common name named a user")
	}
	if (Naming{From: "distinguished_name"}).Check() == nil || (Naming{SANType: "other"}).Check() == nil || (Naming{}).Check() != nil {
		t.Error("Check")
	}
}
