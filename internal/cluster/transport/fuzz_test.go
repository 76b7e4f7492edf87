package transport

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"errors"
	"io"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// FuzzFrameDecoder feeds arbitrary bytes to the frame reader and the body
// decoders: no panic, only io or protocol errors, and every Raft batch
// that decodes survives a re-encode unchanged.
func FuzzFrameDecoder(f *testing.F) {
	good, _ := appendRaftBatch(nil, 7, []*raftpb.Message{msg(1, 2, 3, []byte("entry")), msg(1, 2, 4, nil)})
	req, _ := appendFrame(nil, frameRequest, 5, 99, []byte{0x80, 0x01}, []byte("body"))
	f.Add(append(good, req...))
	f.Add(appendHeader(nil, header{typ: framePing}))
	f.Add(appendHeader(nil, header{typ: frameRaft, len: 1 << 30}))
	f.Add(appendHeader(nil, header{typ: frameRaft, kind: raftSnapshot, len: 1 << 30}))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := frameReader{r: bufio.NewReader(bytes.NewReader(data)), maxFrame: 1 << 16, maxSnap: 1 << 18}
		for range 64 {
			h, body, err := fr.next()
			if err != nil {
				if !errors.Is(err, errProtocol) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				return
			}
			limit := 1 << 16
			if h.typ == frameRaft && h.kind == raftSnapshot {
				limit = 1 << 18
			}
			if len(body) != int(h.len) || len(body) > limit {
				t.Fatalf("body of %d bytes for header %+v", len(body), h)
			}
			switch h.typ {
			case frameRaft:
				msgs, err := decodeRaftBatch(body, fr.own)
				if err != nil {
					if !errors.Is(err, errProtocol) {
						t.Fatalf("raft batch error not a protocol error: %v", err)
					}
					continue
				}
				again, err := appendRaftBatch(nil, h.id, msgs)
				if err != nil {
					t.Fatal(err)
				}
				back, err := decodeRaftBatch(again[headerLen:], false)
				if err != nil || len(back) != len(msgs) {
					t.Fatalf("re-encoded batch: %d messages, %v; want %d", len(back), err, len(msgs))
				}
				for i := range msgs {
					if !proto.Equal(msgs[i], back[i]) {
						t.Fatalf("message %d changed in a round trip: %v / %v", i, msgs[i], back[i])
					}
				}
			case frameRequest:
				if _, _, err := decodeRequest(body); err != nil && !errors.Is(err, errProtocol) {
					t.Fatal(err)
				}
			}
		}
	})
}

var fuzzNonce = [nonceLen]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}

// goodDialerTranscript is what a dialer (node 1, nonce n) sends to node 2
// whose nonce is fuzzNonce: hello then proof.
func goodDialerTranscript(n [nonceLen]byte) []byte {
	hd := hello{from: 1, to: 2, nonce: n}.encode()
	ha := hello{from: 2, to: 1, nonce: fuzzNonce}.encode()
	return append(hd, proof(testSecret, labelD, hd, ha)...)
}

// FuzzHandshakeAccept plays the dialer's bytes against node 2's acceptor:
// no panic, and a handshake succeeds only when the bytes carry a valid
// proof of the secret for node 1.
func FuzzHandshakeAccept(f *testing.F) {
	var n [nonceLen]byte
	n[0] = 9
	good := goodDialerTranscript(n)
	f.Add(good)
	f.Add(good[:helloLen])
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		side := handshakeSide{self: 2, secret: testSecret, known: func(id NodeID) bool { return id == 1 || id == 3 }}
		id, err := acceptHandshake(bufio.NewReader(bytes.NewReader(data)), bufio.NewWriter(&out), side, fuzzNonce)
		if err != nil {
			return
		}
		if id != 1 || len(data) < helloLen+proofLen || out.Len() < 1+helloLen {
			t.Fatalf("accepted node %d from %d bytes", id, len(data))
		}
		want := proof(testSecret, labelD, data[:helloLen], out.Bytes()[1:1+helloLen])
		if !hmac.Equal(data[helloLen:helloLen+proofLen], want) {
			t.Fatal("accepted a dialer without a valid proof")
		}
	})
}

// goodAcceptorTranscript is what node 2 (nonce n) answers node 1 whose
// nonce is fuzzNonce.
func goodAcceptorTranscript(n [nonceLen]byte) []byte {
	hd := hello{from: 1, to: 2, nonce: fuzzNonce}.encode()
	ha := hello{from: 2, to: 1, nonce: n}.encode()
	b := append([]byte{statusOK}, ha...)
	b = append(b, statusOK)
	return append(b, proof(testSecret, labelA, hd, ha)...)
}

// FuzzHandshakeDial plays the acceptor's bytes against node 1 dialing
// node 2: no panic, refusals parsed, success only with a valid proof.
func FuzzHandshakeDial(f *testing.F) {
	var n [nonceLen]byte
	n[0] = 9
	f.Add(goodAcceptorTranscript(n))
	f.Add(encodeRefusal("wrong cluster secret"))
	f.Add([]byte{statusNo, 200, 'x'})
	ha := hello{from: 2, to: 1, nonce: n}.encode()
	f.Add(append(append(append([]byte{statusOK}, ha...), statusGone),
		proof(testSecret, labelR, hello{from: 1, to: 2, nonce: fuzzNonce}.encode(), ha)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		side := handshakeSide{self: 1, secret: testSecret}
		err := dialHandshake(bufio.NewReader(bytes.NewReader(data)), bufio.NewWriter(&out), side, 2, fuzzNonce)
		var re *RefusedError
		if errors.As(err, &re) && len(re.Reason) > 4*maxReason {
			t.Fatalf("refusal reason of %d bytes", len(re.Reason))
		}
		var gone *RemovedError
		if errors.As(err, &gone) && (len(data) < 2+helloLen+proofLen || out.Len() < helloLen ||
			!hmac.Equal(data[2+helloLen:2+helloLen+proofLen], proof(testSecret, labelR, out.Bytes()[:helloLen], data[1:1+helloLen]))) {
			t.Fatal("believed a removal notice without a valid tag")
		}
		if err != nil {
			return
		}
		if len(data) < 2+helloLen+proofLen || out.Len() < helloLen {
			t.Fatalf("handshake succeeded on %d bytes", len(data))
		}
		want := proof(testSecret, labelA, out.Bytes()[:helloLen], data[1:1+helloLen])
		if !hmac.Equal(data[2+helloLen:2+helloLen+proofLen], want) {
			t.Fatal("accepted an acceptor without a valid proof")
		}
	})
}
