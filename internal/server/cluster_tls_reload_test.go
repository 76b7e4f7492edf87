package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/tern-broker/tern/internal/certs"
	"github.com/tern-broker/tern/internal/cluster/transport"
	"github.com/tern-broker/tern/internal/config"
)

// echo is a transport handler answering requests with their body.
type echo struct{}

func (echo) HandleRaft(transport.NodeID, transport.Group, []*raftpb.Message) {}
func (echo) HandleRequest(_ context.Context, _ transport.NodeID, _ uint8, body []byte) ([]byte, error) {
	return body, nil
}
func (echo) HandleNotify(transport.NodeID, uint8, []byte) {}

// The cluster port's certificate, key and CA are reloaded like the client
// listeners': open cluster connections stay up, and the next connection,
// accepted or dialed, uses the new files — here even a new CA, which the
// old configuration would not have trusted.
func TestClusterTLSReloadKeepsConnections(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, caKey := writeCert(t, dir, "ca", nil, nil)
	writeCert(t, dir, "n1", ca, caKey)
	writeCert(t, dir, "n2", ca, caKey)
	load := func(name string) *certs.Reloader {
		r, err := clusterTLS(config.ClusterTLS{CertFile: filepath.Join(dir, name+".pem"), KeyFile: filepath.Join(dir, name+".key"),
			CAFile: filepath.Join(dir, "ca.pem")}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r1, r2, r3 := load("n1"), load("n2"), load("n2")
	start := func(id transport.NodeID, r *certs.Reloader) *transport.TCP {
		tr, err := transport.NewTCP(transport.TCPConfig{Self: id, ListenAddr: "127.0.0.1:0", Secret: []byte("s"),
			TLS: r.ServerConfig(), ClientTLS: r.ClientConfig, Handler: echo{}, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		return tr
	}
	t1, t2 := start(1, r1), start(2, r2)
	t1.SetPeer(2, t2.Addr().String())
	t2.SetPeer(1, t1.Addr().String())
	// request asks node to echo, retrying while it is not connected yet
	// (each try waits up to the transport's ConnectWait), for 10 s at most.
	request := func(to transport.NodeID) error {
		deadline := time.Now().Add(10 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			got, err := t1.Request(ctx, to, 1, []byte("ping"))
			cancel()
			if err == nil && string(got) != "ping" {
				err = fmt.Errorf("reply %q", got)
			}
			if err == nil || time.Now().After(deadline) {
				return err
			}
		}
	}
	if err := request(2); err != nil {
		t.Fatalf("over the first certificates: %v", err)
	}

	// A new CA, and certificates it signed, over the same files.
	ca2, ca2Key := writeCert(t, dir, "ca", nil, nil)
	n1 := mustSerial(writeCert(t, dir, "n1", ca2, ca2Key))
	n2 := mustSerial(writeCert(t, dir, "n2", ca2, ca2Key))
	for _, r := range []*certs.Reloader{r1, r2, r3} {
		if err := r.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	if err := request(2); err != nil {
		t.Fatalf("the open connection after the reload: %v", err)
	}
	if ps := t1.Stats().Peers[2]; !ps.Connected || ps.Reconnects != 0 {
		t.Fatalf("the reload dropped the open cluster connection: %+v", ps)
	}

	// A new handshake with each side's current configuration presents
	// and verifies the new certificates.
	server, client := handshakeSerials(t, r2, r1)
	if server.Cmp(n2) != 0 || client.Cmp(n1) != 0 {
		t.Fatalf("after the reload the handshake presented server %v, client %v; want %v, %v", server, client, n2, n1)
	}
	// And through the transport: node 1 dials node 3 (a new peer) with
	// the reloaded client configuration; with the old one it would not
	// trust node 3's certificate from the new CA.
	t3 := start(3, r3)
	t1.SetPeer(3, t3.Addr().String())
	t3.SetPeer(1, t1.Addr().String())
	if err := request(3); err != nil {
		t.Fatalf("a new cluster connection after the reload: %v", err)
	}
	_ = ca
}

func mustSerial(c *x509.Certificate, _ *ecdsa.PrivateKey) *big.Int { return c.SerialNumber }

// handshakeSerials shakes hands once over loopback, server with
// serverR's configuration and client with clientR's, and returns the
// serial numbers of the certificates each presented.
func handshakeSerials(t *testing.T, serverR, clientR *certs.Reloader) (server, client *big.Int) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverR.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan *big.Int, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil || len(tc.ConnectionState().PeerCertificates) == 0 {
			got <- nil
			return
		}
		got <- tc.ConnectionState().PeerCertificates[0].SerialNumber
	}()
	cfg := clientR.ClientConfig().Clone()
	cfg.ServerName = "127.0.0.1"
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// TLS 1.3: the server verifies the client's certificate after the
	// client's handshake returns; its result is what got carries.
	client = <-got
	return c.ConnectionState().PeerCertificates[0].SerialNumber, client
}
