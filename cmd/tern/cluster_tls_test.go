package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// pemCert writes name.pem and name.key into dir: a certificate for
// 127.0.0.1 signed by ca (self-signed, a CA, when ca is nil).
func pemCert(t *testing.T, dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	if ca == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		ca, caKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for file, block := range map[string]*pem.Block{name + ".pem": {Type: "CERTIFICATE", Bytes: der}, name + ".key": {Type: "EC PRIVATE KEY", Bytes: kder}} {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestClusterOverMutualTLS: three nodes configured by TOML files with
// [cluster.tls] form a cluster and replicate a quorum queue over TLS.
func TestClusterOverMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := pemCert(t, dir, "ca", nil, nil)
	nodes := newTestCluster(t, 3, 0)
	var peers []string
	for _, nd := range nodes {
		pemCert(t, dir, nd.name, ca, caKey)
		peers = append(peers, fmt.Sprintf("%q", nd.name+"@"+nd.clusterAddr))
	}
	for _, nd := range nodes {
		toml := fmt.Sprintf(`data_dir = %q
amqp_addr = "127.0.0.1:0"
http_addr = "127.0.0.1:0"
mqtt_addr = ""
mqtt_ws_addr = ""

[cluster]
node_id = %q
cluster_addr = %q
peers = [%s]
secret_file = %q

[cluster.tls]
cert_file = %q
key_file = %q
ca_file = %q
`, nd.dataDir, nd.name, nd.clusterAddr, strings.Join(peers, ", "), writeSecret(t, testClusterSecret),
			filepath.Join(dir, nd.name+".pem"), filepath.Join(dir, nd.name+".key"), filepath.Join(dir, "ca.pem"))
		nd.args = []string{"server", "--config", writeConfig(t, toml)}
		nd.start(t)
	}
	for _, nd := range nodes {
		nd.waitServing(t, 60*time.Second)
	}
	c, ch := dialChannel(t, nodes[0].url())
	defer c.Close()
	if _, err := ch.QueueDeclare("tls-q", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	conf, err := ch.PublishWithDeferredConfirm("", "tls-q", false, false, amqp.Publishing{Body: crashBody(7)})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := conf.WaitContext(t.Context()); !ok || err != nil {
		t.Fatalf("publish over a TLS cluster: %v %v", ok, err)
	}
	c2, ch2 := dialChannel(t, nodes[2].url())
	defer c2.Close()
	d, err := ch2.Consume("tls-q", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-d:
		if checkBody(t, m.Body) != 7 {
			t.Fatal("wrong message")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the message published on n1 did not reach n3's consumer")
	}
	// The cluster port speaks TLS and wants a client certificate the CA
	// signed.
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "n2.pem"), filepath.Join(dir, "n2.key"))
	if err != nil {
		t.Fatal(err)
	}
	handshake := func(certs []tls.Certificate) error {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", nodes[0].clusterAddr,
			&tls.Config{RootCAs: pool, Certificates: certs, ServerName: "127.0.0.1"})
		if err != nil {
			return err
		}
		defer conn.Close()
		// TLS 1.3 reports a refused client certificate on the first read.
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return nil // accepted: the node waits for our hello
		}
		return err
	}
	if err := handshake([]tls.Certificate{cert}); err != nil {
		t.Fatalf("TLS with a certificate the CA signed: %v", err)
	}
	if err := handshake(nil); err == nil {
		t.Fatal("the cluster port accepted a TLS client without a certificate")
	}

	st, err := nodes[1].clusterStatus(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range st.Nodes {
		if !n.Reachable {
			t.Fatalf("%s is not reachable over TLS: %+v", n.Name, st.Nodes)
		}
	}
}
