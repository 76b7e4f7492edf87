package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/certs"
	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/store"
	"github.com/tern-broker/tern/internal/vfs"
)

// writeCert writes a PEM certificate (signed by parent, or self-signed
// when parent is nil) for 127.0.0.1 and its key into dir.
func writeCert(t *testing.T, dir, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(name+".pem", "CERTIFICATE", der)
	write(name+".key", "EC PRIVATE KEY", kder)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestClusterTLSIsMutual(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := writeCert(t, dir, "ca", nil, nil)
	writeCert(t, dir, "n1", ca, caKey)
	writeCert(t, dir, "n2", ca, caKey)
	writeCert(t, dir, "stranger", nil, nil) // self-signed: not the cluster's CA
	cfg := func(name string) *certs.Reloader {
		c, err := clusterTLS(config.ClusterTLS{CertFile: filepath.Join(dir, name+".pem"), KeyFile: filepath.Join(dir, name+".key"), CAFile: filepath.Join(dir, "ca.pem")}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	handshake := func(serverR, clientR *certs.Reloader) error {
		server, client := serverR.ServerConfig(), clientR.ClientConfig()
		ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		errc := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				err = c.(*tls.Conn).Handshake()
				c.Close()
			}
			errc <- err
		}()
		client = client.Clone()
		client.ServerName = "127.0.0.1"
		c, err := tls.Dial("tcp", ln.Addr().String(), client)
		if err == nil {
			err = c.Handshake()
			c.Close()
		}
		if serr := <-errc; err == nil {
			err = serr
		}
		return err
	}
	if err := handshake(cfg("n1"), cfg("n2")); err != nil {
		t.Fatalf("two nodes of the cluster: %v", err)
	}
	stranger := cfg("stranger")
	if err := handshake(cfg("n1"), stranger); err == nil {
		t.Fatal("a client certificate the CA did not sign was accepted")
	}
	if c, err := clusterTLS(config.ClusterTLS{}, nil); c != nil || err != nil {
		t.Fatalf("no TLS configured: %v %v", c, err)
	}
	if _, err := clusterTLS(config.ClusterTLS{CertFile: filepath.Join(dir, "n1.pem"), KeyFile: filepath.Join(dir, "n1.key"), CAFile: filepath.Join(dir, "n1.key")}, nil); err == nil {
		t.Fatal("a CA file without a certificate accepted")
	}
}

func TestDataDirModeIsChecked(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(vfs.Default, dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	single := config.Default()
	single.DataDir = dir
	clustered := single
	clustered.Cluster = config.Cluster{NodeID: "n1"}
	if err := checkDataDirMode(single, st); err != nil {
		t.Fatalf("a fresh directory, single node: %v", err)
	}
	if err := checkDataDirMode(clustered, st); err != nil {
		t.Fatalf("a fresh directory, cluster node: %v", err)
	}
	seq, err := st.AppendCommand([]byte(`{"op":"add_vhost","name":"v"}`))
	if err == nil {
		err = st.SyncCommands(seq)
	}
	if err == nil {
		err = st.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	// What the store recovers at its next start is what the check reads.
	if st, err = store.Open(vfs.Default, dir, store.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := checkDataDirMode(clustered, st); err == nil || !strings.Contains(err.Error(), "single node's definitions") {
		t.Fatalf("a single node's directory as a new cluster node: %v", err)
	}
	if err := os.MkdirAll(clusterDir(dir), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(clusterDir(dir), "NODE"), []byte("n1\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := checkDataDirMode(single, st); err == nil || !strings.Contains(err.Error(), `cluster node "n1"`) {
		t.Fatalf("a cluster node's directory as a single node: %v", err)
	}
}
