package transport

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"testing"
)

// user7 4.4: a node removed from the cluster that dials a member which
// tombstoned it is told so, authenticated (RemovedError), instead of
// "unknown node id"; a notice whose tag is not the secret's is ignored.
func TestHandshakeTellsARemovedNode(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe()
	accErr := make(chan error, 1)
	go func() {
		side := handshakeSide{self: 2, secret: testSecret, known: func(NodeID) bool { return false },
			removed: func(id NodeID) bool { return id == 1 }}
		_, err := acceptHandshake(bufio.NewReader(b), bufio.NewWriter(b), side, newNonce())
		b.Close()
		accErr <- err
	}()
	err := dialHandshake(bufio.NewReader(a), bufio.NewWriter(a), handshakeSide{self: 1, secret: testSecret}, 2, newNonce())
	a.Close()
	var gone *RemovedError
	if !errors.As(err, &gone) || gone.By != 2 {
		t.Fatalf("dialer: %v, want a RemovedError from node 2", err)
	}
	if aerr := <-accErr; aerr == nil {
		t.Fatal("the acceptor took a removed node's connection")
	}

	// A forged notice: the acceptor's hello, then status 2 and a tag not
	// made with the secret.
	var n [nonceLen]byte
	n[0] = 5
	ha := hello{from: 2, to: 1, nonce: n}.encode()
	forged := append(append([]byte{statusOK}, ha...), statusGone)
	forged = append(forged, bytes.Repeat([]byte{7}, proofLen)...)
	var out bytes.Buffer
	err = dialHandshake(bufio.NewReader(bytes.NewReader(forged)), bufio.NewWriter(&out), handshakeSide{self: 1, secret: testSecret}, 2, fuzzNonce)
	if err == nil || errors.As(err, &gone) {
		t.Fatalf("a forged removal notice: %v", err)
	}
	// A genuine one over the same hellos is believed.
	genuine := append(append([]byte{statusOK}, ha...), statusGone)
	genuine = append(genuine, proof(testSecret, labelR, hello{from: 1, to: 2, nonce: fuzzNonce}.encode(), ha)...)
	err = dialHandshake(bufio.NewReader(bytes.NewReader(genuine)), bufio.NewWriter(&out), handshakeSide{self: 1, secret: testSecret}, 2, fuzzNonce)
	if !errors.As(err, &gone) {
		t.Fatalf("a genuine removal notice: %v", err)
	}
	// Before the proofs it is malformed.
	if err := dialHandshake(bufio.NewReader(bytes.NewReader([]byte{statusGone})), bufio.NewWriter(&out), handshakeSide{self: 1, secret: testSecret}, 2, fuzzNonce); err == nil || errors.As(err, &gone) {
		t.Fatalf("a removal notice before the hellos: %v", err)
	}
}
