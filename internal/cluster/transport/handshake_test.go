package transport

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"
)

// TestHandshakeTranscripts: the fuzz targets' good transcripts do succeed
// (so their "success needs a valid proof" check is not vacuous) and one
// flipped bit in a proof is refused.
func TestHandshakeTranscripts(t *testing.T) {
	t.Parallel()
	var n [nonceLen]byte
	n[3] = 1
	side2 := handshakeSide{self: 2, secret: testSecret, known: func(id NodeID) bool { return id == 1 }}
	good := goodDialerTranscript(n)
	var out bytes.Buffer
	if id, err := acceptHandshake(bufio.NewReader(bytes.NewReader(good)), bufio.NewWriter(&out), side2, fuzzNonce); err != nil || id != 1 {
		t.Fatalf("good dialer transcript: node %d, %v", id, err)
	}
	good[len(good)-1] ^= 1
	out.Reset()
	_, err := acceptHandshake(bufio.NewReader(bytes.NewReader(good)), bufio.NewWriter(&out), side2, fuzzNonce)
	if err == nil || !strings.Contains(err.Error(), "wrong cluster secret") {
		t.Fatalf("flipped dialer proof: %v", err)
	}
	if !bytes.HasSuffix(out.Bytes(), encodeRefusal("wrong cluster secret")) {
		t.Fatalf("acceptor did not send the refusal: %q", out.Bytes())
	}

	side1 := handshakeSide{self: 1, secret: testSecret}
	ans := goodAcceptorTranscript(n)
	out.Reset()
	if err := dialHandshake(bufio.NewReader(bytes.NewReader(ans)), bufio.NewWriter(&out), side1, 2, fuzzNonce); err != nil {
		t.Fatalf("good acceptor transcript: %v", err)
	}
	ans[len(ans)-1] ^= 1
	out.Reset()
	if err := dialHandshake(bufio.NewReader(bytes.NewReader(ans)), bufio.NewWriter(&out), side1, 2, fuzzNonce); err == nil {
		t.Fatal("flipped acceptor proof accepted")
	}
	// The secret never crosses the wire.
	if bytes.Contains(out.Bytes(), testSecret) {
		t.Fatal("the dialer sent the secret")
	}
}

// TestHandshakeOverPipe runs both sides against each other.
func TestHandshakeOverPipe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		dialSecret     []byte
		wantErr        string
		wantAcceptorID NodeID
	}{
		{"same secret", testSecret, "", 1},
		{"other secret", []byte("other"), "wrong cluster secret", 1},
	} {
		a, b := net.Pipe()
		accErr := make(chan error, 1)
		go func() {
			side := handshakeSide{self: 2, secret: testSecret, known: func(id NodeID) bool { return id == 1 }}
			id, err := acceptHandshake(bufio.NewReader(b), bufio.NewWriter(b), side, newNonce())
			if err == nil && id != tc.wantAcceptorID {
				err = errors.New("wrong id")
			}
			b.Close()
			accErr <- err
		}()
		err := dialHandshake(bufio.NewReader(a), bufio.NewWriter(a), handshakeSide{self: 1, secret: tc.dialSecret}, 2, newNonce())
		a.Close()
		aerr := <-accErr
		if tc.wantErr == "" {
			if err != nil || aerr != nil {
				t.Fatalf("%s: dialer %v, acceptor %v", tc.name, err, aerr)
			}
			continue
		}
		var re *RefusedError
		if !errors.As(err, &re) || re.Reason != tc.wantErr || aerr == nil || !strings.Contains(aerr.Error(), tc.wantErr) {
			t.Fatalf("%s: dialer %v, acceptor %v; want both to say %q", tc.name, err, aerr, tc.wantErr)
		}
	}
}

func TestPrintable(t *testing.T) {
	t.Parallel()
	if got := printable([]byte("a\x00b\x1b[31m\xffc")); got != "a?b?[31m?c" {
		t.Fatalf("printable: %q", got)
	}
}
