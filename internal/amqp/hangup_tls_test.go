//go:build linux

package amqp

import (
	"crypto/tls"
	"net"
	"testing"
	"time"
)

// A TLS connection's hang-up is seen on the TCP socket under it, before
// anything is read: the TLS layer must not hide it from peerHungUp.
func TestPeerHungUpSeesThroughTLS(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	nc := tls.Server(raw, &tls.Config{})
	if peerHungUp(nc) {
		t.Fatal("hung up before the client closed")
	}
	if _, err := client.Write([]byte("unread bytes in front of the FIN")); err != nil {
		t.Fatal(err)
	}
	client.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !peerHungUp(nc) {
		if time.Now().After(deadline) {
			t.Fatal("the client's FIN behind unread data was not seen through the TLS connection")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
