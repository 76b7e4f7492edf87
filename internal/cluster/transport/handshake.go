package transport

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The handshake runs on a fresh connection (after TLS, when configured)
// before any frame. The dialer D and the acceptor A prove to each other
// that they hold the cluster secret without sending it, and name
// themselves:
//
//	D → A  hello(from D, to A, nonce nD)
//	A → D  ok + hello(from A, to D, nonce nA)      or refusal(reason), close
//	D → A  proofD = HMAC-SHA256(secret, "tern-cluster-v1 dialer"   ‖ helloD ‖ helloA)
//	A → D  ok + proofA = HMAC-SHA256(secret, "tern-cluster-v1 acceptor" ‖ helloD ‖ helloA)
//	                                                or refusal(reason), close
//
// A refuses at the first step a hello that is malformed, claims A's own
// id, is addressed to another node or echoes A's nonce; at the last step
// a wrong proof, then a dialer that is not among its peers or has the
// higher id (only the lower id dials). A dialer that was removed from the
// cluster (Tombstone) gets, at the last step, the byte 2 and
// HMAC-SHA256(secret, "tern-cluster-v1 removed" ‖ helloD ‖ helloA)
// instead of A's proof: a removal notice D can trust (only a holder of
// the secret can make it, for this exchange only), so D stops for good
// (RemovedError) rather than wait for a cluster that will never take it.
//
// hello is "TRNC", version 1, from and to as big-endian uint64 and a
// 32-byte random nonce (53 bytes). ok is the byte 0 and a refusal the
// byte 1, a length byte and that many bytes of reason text. Both nonces
// enter both proofs, so neither side can replay an old proof, and the role
// label keeps A's proof from being reflected back as D's. A checks D's
// proof before it sends its own, so a dialer without the secret learns
// nothing it could check a guess against except through A's refusal.
const (
	helloLen   = 4 + 1 + 8 + 8 + nonceLen
	nonceLen   = 32
	proofLen   = sha256.Size
	protoVer   = 1
	statusOK   = 0
	statusNo   = 1
	statusGone = 2 // a removal notice (last step only)
	maxReason  = 255
	labelD     = "tern-cluster-v1 dialer"
	labelA     = "tern-cluster-v1 acceptor"
	labelR     = "tern-cluster-v1 removed"
	helloMagic = "TRNC"
)

// hello is a side's introduction.
type hello struct {
	from, to NodeID
	nonce    [nonceLen]byte
}

func (h hello) encode() []byte {
	b := make([]byte, 0, helloLen)
	b = append(b, helloMagic...)
	b = append(b, protoVer)
	b = binary.BigEndian.AppendUint64(b, h.from)
	b = binary.BigEndian.AppendUint64(b, h.to)
	return append(b, h.nonce[:]...)
}

// parseHello decodes a hello; it never panics.
func parseHello(b []byte) (hello, error) {
	var h hello
	if len(b) != helloLen {
		return h, fmt.Errorf("%w: hello of %d bytes", errHandshake, len(b))
	}
	if string(b[:4]) != helloMagic {
		return h, fmt.Errorf("%w: not a tern cluster peer (bad magic %q)", errHandshake, b[:4])
	}
	if b[4] != protoVer {
		return h, fmt.Errorf("%w: protocol version %d, want %d", errHandshake, b[4], protoVer)
	}
	h.from = binary.BigEndian.Uint64(b[5:13])
	h.to = binary.BigEndian.Uint64(b[13:21])
	copy(h.nonce[:], b[21:])
	return h, nil
}

// errHandshake marks a failed handshake; refusedError a refusal the peer
// sent us.
var errHandshake = errors.New("transport: handshake failed")

// RefusedError is the reason a peer gave for refusing our handshake.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return "transport: refused by peer: " + e.Reason }

// RemovedError is a peer's authenticated notice that this node was
// removed from the cluster (the peer holds the secret and tombstoned us).
type RemovedError struct{ By NodeID }

func (e *RemovedError) Error() string {
	return fmt.Sprintf("transport: node %d says this node was removed from the cluster", e.By)
}

// removalNotice is a statusGone read by readStatus: its tag is checked by
// dialHandshake, which knows both hellos.
type removalNotice struct{ tag []byte }

func (*removalNotice) Error() string { return "transport: removal notice" }

// refusal is a handshake failure found on this side: reason goes into the
// log and, when send is set, to the peer.
type refusal struct {
	reason string
	send   bool
}

func (r *refusal) Error() string { return "transport: handshake refused: " + r.reason }

// proof computes a side's HMAC over both hellos.
func proof(secret []byte, label string, helloD, helloA []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	m.Write(helloD)
	m.Write(helloA)
	return m.Sum(nil)
}

// readStatus reads an ok byte followed by n bytes, or a refusal.
func readStatus(r *bufio.Reader, n int) ([]byte, error) {
	st, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	switch st {
	case statusOK:
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		return b, nil
	case statusNo:
		l, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		b := make([]byte, l)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		return nil, &RefusedError{Reason: printable(b)}
	case statusGone:
		if n != proofLen {
			return nil, fmt.Errorf("%w: a removal notice before the proofs", errHandshake)
		}
		b := make([]byte, proofLen)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		return nil, &removalNotice{tag: b}
	default:
		return nil, fmt.Errorf("%w: bad status byte %d", errHandshake, st)
	}
}

// printable keeps a peer's reason text safe to log.
func printable(b []byte) string {
	out := make([]rune, 0, len(b))
	for _, r := range string(b) {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			r = '?'
		}
		out = append(out, r)
	}
	return string(out)
}

func encodeRefusal(reason string) []byte {
	if len(reason) > maxReason {
		reason = reason[:maxReason]
	}
	return append([]byte{statusNo, byte(len(reason))}, reason...)
}

// handshakeSide is what a side knows before it starts.
type handshakeSide struct {
	self   NodeID
	secret []byte
	// known reports whether id may connect (acceptor only).
	known func(id NodeID) bool
	// removed reports whether id was removed from the cluster (acceptor
	// only; nil: none was).
	removed func(id NodeID) bool
}

// newNonce returns a random nonce.
func newNonce() [nonceLen]byte {
	var n [nonceLen]byte
	rand.Read(n[:]) // never fails (crypto/rand panics rather)
	return n
}

// dialHandshake runs the dialer's side against the node expected to be
// peer; it flushes w itself.
func dialHandshake(r *bufio.Reader, w *bufio.Writer, s handshakeSide, peer NodeID, nonce [nonceLen]byte) error {
	hd := hello{from: s.self, to: peer, nonce: nonce}.encode()
	w.Write(hd)
	if err := w.Flush(); err != nil {
		return err
	}
	ha, err := readStatus(r, helloLen)
	if err != nil {
		return err
	}
	h, err := parseHello(ha)
	if err != nil {
		return err
	}
	if h.from != peer {
		return &refusal{reason: fmt.Sprintf("dialed node %d but the peer says it is node %d", peer, h.from)}
	}
	if h.to != s.self {
		return &refusal{reason: fmt.Sprintf("peer addressed its hello to node %d, we are node %d", h.to, s.self)}
	}
	if h.nonce == nonce {
		return &refusal{reason: "peer echoed our nonce"}
	}
	w.Write(proof(s.secret, labelD, hd, ha))
	if err := w.Flush(); err != nil {
		return err
	}
	pa, err := readStatus(r, proofLen)
	var rn *removalNotice
	if errors.As(err, &rn) {
		if !hmac.Equal(rn.tag, proof(s.secret, labelR, hd, ha)) {
			return &refusal{reason: "a removal notice with a wrong proof (ignored)"}
		}
		return &RemovedError{By: peer}
	}
	if err != nil {
		return err
	}
	if !hmac.Equal(pa, proof(s.secret, labelA, hd, ha)) {
		return &refusal{reason: "wrong cluster secret (the peer's proof does not match)"}
	}
	return nil
}

// acceptHandshake runs the acceptor's side and returns the dialer's id.
// A refusal is sent to the peer before the error is returned.
func acceptHandshake(r *bufio.Reader, w *bufio.Writer, s handshakeSide, nonce [nonceLen]byte) (NodeID, error) {
	hd := make([]byte, helloLen)
	// The magic first: a stranger (an HTTP probe, an AMQP client on the
	// wrong port) is told at once, not after the handshake timeout.
	if _, err := io.ReadFull(r, hd[:len(helloMagic)]); err != nil {
		return 0, err
	}
	if string(hd[:len(helloMagic)]) != helloMagic {
		_, err := parseHello(hd)
		return 0, refuse(w, &refusal{reason: err.Error(), send: true})
	}
	if _, err := io.ReadFull(r, hd[len(helloMagic):]); err != nil {
		return 0, err
	}
	h, err := parseHello(hd)
	if err != nil {
		return 0, refuse(w, &refusal{reason: err.Error(), send: true})
	}
	// Addressing mistakes are refused at once; membership (is the id one
	// of our peers, may it dial us) only after the proof, so a stranger
	// without the secret learns nothing about who is in the cluster.
	switch {
	case h.from == s.self:
		return h.from, refuse(w, &refusal{reason: fmt.Sprintf("peer claims our own node id %d", h.from), send: true})
	case h.to != s.self:
		return h.from, refuse(w, &refusal{reason: fmt.Sprintf("peer dialed node %d but this is node %d", h.to, s.self), send: true})
	case h.nonce == nonce:
		return h.from, refuse(w, &refusal{reason: "peer echoed our nonce", send: true})
	}
	ha := hello{from: s.self, to: h.from, nonce: nonce}.encode()
	w.WriteByte(statusOK)
	w.Write(ha)
	if err := w.Flush(); err != nil {
		return h.from, err
	}
	pd := make([]byte, proofLen)
	if _, err := io.ReadFull(r, pd); err != nil {
		return h.from, err
	}
	if !hmac.Equal(pd, proof(s.secret, labelD, hd, ha)) {
		return h.from, refuse(w, &refusal{reason: "wrong cluster secret", send: true})
	}
	switch {
	case s.removed != nil && s.removed(h.from) && !s.known(h.from):
		w.WriteByte(statusGone)
		w.Write(proof(s.secret, labelR, hd, ha))
		w.Flush()
		return h.from, &refusal{reason: fmt.Sprintf("node %d was removed from the cluster (told so)", h.from)}
	case !s.known(h.from):
		return h.from, refuse(w, &refusal{reason: fmt.Sprintf("unknown node id %d (not among this node's peers)", h.from), send: true})
	case h.from > s.self:
		return h.from, refuse(w, &refusal{reason: fmt.Sprintf("node %d dialed node %d: only the lower id dials", h.from, s.self), send: true})
	}
	w.WriteByte(statusOK)
	w.Write(proof(s.secret, labelA, hd, ha))
	return h.from, w.Flush()
}

// refuse sends a refusal (best effort) and returns it as the error.
func refuse(w *bufio.Writer, r *refusal) error {
	if r.send {
		w.Write(encodeRefusal(r.reason))
		w.Flush()
	}
	return r
}
