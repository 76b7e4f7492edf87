package mqtt

import (
	"encoding/binary"
	"errors"
	"slices"
	"sync"

	"github.com/tern-broker/tern/internal/message"
)

// A persistent session's QoS 1/2 state outlives its connections and, for a
// durable session, the broker [MQTT-4.4.0-1]: when the client resumes the
// session, unacknowledged PUBLISHes go again with their original packet
// identifiers and DUP set, a QoS 2 message whose PUBREC came gets PUBREL
// (never its PUBLISH again), and an inbound QoS 2 packet id received but
// not released still absorbs the client's DUP resend.
//
// What is kept, and where (the cheapest encoding that is still right):
//
//   - The outbound packet id is not stored at all: a delivery from the
//     session queue takes the id its queue sequence number gives
//     (pidForSeq). The message stays in the session queue until the client
//     completes it, keeping its sequence number across reconnects and
//     restarts, so the resend has the original id for free; a delivery
//     whose id is still busy waits (head of the queue) until it is free.
//   - The outbound "PUBREC received" state is one small keyed record per
//     message in the store's "mqtt-inflight" record log, written when the
//     PUBREC comes; the PUBREL goes once it is durable (the group commit,
//     QoS 2 only), so a PUBLISH is never resent after its PUBREL, even
//     after kill -9. Then the queue message is acked: the record alone
//     holds the PUBREL obligation (a resumed session sends PUBREL for each
//     record, resendReleased), so the message's expiry or a drop cannot
//     lose it. It is removed after PUBCOMP (sessions.barrier).
//   - The inbound QoS 2 packet ids are one keyed record each, written with
//     the publish's own group commit (the PUBREC waits for both) and
//     removed at PUBREL, the PUBCOMP going once the removal is durable; a
//     recovered id absorbs only a PUBLISH with DUP set, so a new message
//     reusing the id (DUP 0) is never taken for a resend.
//
// QoS 1 writes nothing: its resend needs only the sequence number.

// pidForSeq is the packet id of a session queue's message: 1…65535 from its
// sequence number, so the same message always goes with the same id.
func pidForSeq(seq uint64) uint16 { return uint16(seq%65535) + 1 }

// SessionLog keeps the sessions' QoS 2 state durably: the store's
// "mqtt-inflight" record log (the same kind as RetainedLog's), which the
// server wires in.
type SessionLog = RetainedLog

// inbound QoS 2 packet id states (ackQueue.rel).
const (
	relHeld      byte = 1 // received on this broker run: any PUBLISH with it is a resend
	relRecovered byte = 2 // recovered from the log: only a DUP PUBLISH is a resend
)

// outRel identifies a message of the session queue whose PUBREC came.
type outRel struct {
	queueID   string // the session queue's identity: a new queue's seqs start over
	published int64  // the message's publication time: a seq a torn log reused is another message
}

// sessionState is a persistent session's QoS 2 state between and across
// connections. Guarded by mu (an inner lock: taken under conn.mu).
type sessionState struct {
	mu       sync.Mutex
	released map[uint64]outRel // outbound: session queue seq → PUBREC received
	inbound  map[uint16]byte   // inbound: packet id → relHeld / relRecovered
	// unrecord are released seqs completed (PUBCOMP, queue acked) whose
	// records wait for a commit round after the ack (barrier).
	unrecord  []uint64
	barrierOn bool
	attached  bool // a connection has it (attach … detach)
	// owner is the id of the connection that attached it last: only that
	// one may change it (release, detach). A taken-over connection whose
	// teardown runs late must not hand back its stale inbound ids nor
	// mark the state detached under the connection that now uses it.
	owner uint64
}

func (s *sessionState) empty() bool {
	return len(s.released) == 0 && len(s.inbound) == 0 && len(s.unrecord) == 0 && !s.barrierOn
}

// sessions holds the QoS 2 state of persistent sessions by client id, in
// memory and (log != nil) in the record log. An entry exists only while a
// session has state: an idle fleet's offline sessions cost nothing here.
type sessions struct {
	log SessionLog

	mu sync.Mutex
	m  map[string]*sessionState
}

// Record keys: client id, U+0000 (which a client id cannot hold
// [MQTT-1.5.4-2]), a kind byte, then the number big-endian.
const (
	keyOut     = 'o' // outbound: seq uint64; body: the queue id; Published in the record's time
	keyIn      = 'i' // inbound: packet id uint16
	keyBarrier = 'b' // an empty record whose durability orders removals after queue acks
)

func outKey(clientID string, seq uint64) string {
	return string(binary.BigEndian.AppendUint64([]byte(clientID+"\x00o"), seq))
}

func inKey(clientID string, pid uint16) string {
	return string(binary.BigEndian.AppendUint16([]byte(clientID+"\x00i"), pid))
}

func barrierKey(clientID string) string { return clientID + "\x00b" }

// parseSessionKey decodes a record key; ok is false for a key this version
// did not write (it is removed). The number may hold zero bytes, so the
// key is read from its end: each kind has a fixed length.
func parseSessionKey(key string) (clientID string, kind byte, n uint64, ok bool) {
	tail := func(kind byte, size int) (string, string, bool) {
		i := len(key) - size - 2
		if i < 0 || key[i] != 0 || key[i+1] != kind {
			return "", "", false
		}
		return key[:i], key[i+2:], true
	}
	if id, rest, ok := tail(keyOut, 8); ok {
		return id, keyOut, binary.BigEndian.Uint64([]byte(rest)), true
	}
	if id, rest, ok := tail(keyIn, 2); ok {
		pid := binary.BigEndian.Uint16([]byte(rest))
		return id, keyIn, uint64(pid), pid != 0
	}
	if id, _, ok := tail(keyBarrier, 0); ok {
		return id, keyBarrier, 0, true
	}
	return "", 0, 0, false
}

// newSessions loads what the log recovered.
func newSessions(log SessionLog, recovered []RetainedRecord) *sessions {
	s := &sessions{log: log, m: map[string]*sessionState{}}
	for _, r := range recovered {
		id, kind, n, ok := parseSessionKey(r.Key)
		if !ok || kind == keyBarrier {
			// A barrier's removals were not all done: the records it
			// guarded are still there and harmless (see release).
			if log != nil {
				log.Remove(r.Key)
			}
			continue
		}
		st := s.getLocked(id)
		if kind == keyOut {
			put(&st.released, n, outRel{queueID: string(r.Msg.Body), published: r.Msg.Published})
		} else {
			put(&st.inbound, uint16(n), relRecovered)
		}
	}
	return s
}

func (s *sessions) getLocked(clientID string) *sessionState {
	st := s.m[clientID]
	if st == nil {
		st = &sessionState{}
		s.m[clientID] = st
	}
	return st
}

// attach returns the state of a resumed session whose queue is queueID
// (""; no queue yet), creating it, for the connection owner (its id);
// outbound state of another queue (the session ended and began again) is
// dropped.
func (s *sessions) attach(clientID, queueID string, owner uint64) *sessionState {
	s.mu.Lock()
	st := s.getLocked(clientID)
	st.mu.Lock()
	st.attached = true // under s.mu: forgetIdle cannot drop it now
	st.owner = owner
	s.mu.Unlock()
	var stale []uint64
	for seq, r := range st.released {
		if r.queueID != queueID {
			stale = append(stale, seq)
			delete(st.released, seq)
		}
	}
	st.mu.Unlock()
	if s.log != nil {
		for _, seq := range stale {
			s.log.Remove(outKey(clientID, seq))
		}
	}
	return st
}

// detach hands the inbound ids of owner's connection back to the state and
// forgets the session's entry when it holds nothing (the client left):
// offline sessions without QoS 2 state cost no memory here. A connection
// that no longer owns the state (taken over) changes nothing.
func (s *sessions) detach(clientID string, st *sessionState, owner uint64, inbound map[uint16]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.owner != owner {
		return
	}
	st.inbound = inbound
	st.attached = false
	if st.empty() && s.m[clientID] == st {
		delete(s.m, clientID)
	}
}

// forgetIdle forgets an entry that a barrier kept after its client left,
// unless a connection took it up again meanwhile.
func (s *sessions) forgetIdle(clientID string, st *sessionState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.attached && st.empty() && s.m[clientID] == st {
		delete(s.m, clientID)
	}
}

// drop ends a session's state: the session ended (clean start, expiry, a
// session of another user replaced).
func (s *sessions) drop(clientID string) {
	s.mu.Lock()
	st := s.m[clientID]
	delete(s.m, clientID)
	s.mu.Unlock()
	if st == nil || s.log == nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for seq := range st.released {
		s.log.Remove(outKey(clientID, seq))
	}
	for _, seq := range st.unrecord {
		s.log.Remove(outKey(clientID, seq))
	}
	for pid := range st.inbound {
		s.log.Remove(inKey(clientID, pid))
	}
	st.released, st.inbound, st.unrecord = nil, nil, nil
}

// isReleased reports whether the session queue's message d (seq,
// publication time) had its PUBREC: it goes again as PUBREL.
func (st *sessionState) isReleased(queueID string, seq uint64, published int64) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	r, ok := st.released[seq]
	return ok && r.queueID == queueID && r.published == published
}

// releasedSeqs lists the seqs whose PUBREC is recorded, in order.
func (st *sessionState) releasedSeqs() []uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	seqs := make([]uint64, 0, len(st.released))
	for seq := range st.released {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	return seqs
}

// unrelease forgets a PUBREC whose record could not be written.
func (st *sessionState) unrelease(seq uint64) {
	st.mu.Lock()
	delete(st.released, seq)
	st.mu.Unlock()
}

// errNotOwner: a taken-over connection's PUBREC is not recorded (its
// PUBREL does not go; the message goes again to the session's connection).
var errNotOwner = errors.New("mqtt: the session was taken over")

// release records a PUBREC for the session queue's message seq, on behalf
// of the connection owner; done learns when the record is durable (at
// once without a log), or that it failed (the PUBREC is then forgotten).
func (s *sessions) release(clientID string, st *sessionState, owner uint64, queueID string, seq uint64, published int64, done message.Completion, token uint64) {
	st.mu.Lock()
	if st.owner != owner {
		st.mu.Unlock()
		done.Durable(token, errNotOwner)
		return
	}
	put(&st.released, seq, outRel{queueID: queueID, published: published})
	st.mu.Unlock()
	if s.log == nil {
		done.Durable(token, nil)
		return
	}
	m := &message.Message{Body: []byte(queueID), Published: published}
	// Not recorded: the PUBREC is forgotten (no PUBREL may go, and the
	// message, back in the queue, goes again as a PUBLISH).
	failed := completionFunc(func(token uint64, err error) {
		if err != nil {
			st.unrelease(seq)
		}
		done.Durable(token, err)
	})
	if err := s.log.Put(outKey(clientID, seq), m, failed, token); err != nil {
		failed.Durable(token, err)
	}
}

// complete forgets seq's PUBREC once its PUBCOMP came and the queue was
// told to ack it. The record goes only after a commit round that began
// after the ack (a barrier record's durability): removed earlier, a kill
// -9 could keep the message in the queue but lose its PUBREC state, and
// the PUBLISH would go again after its PUBREL.
func (s *sessions) complete(clientID string, st *sessionState, seq uint64) {
	st.mu.Lock()
	if _, ok := st.released[seq]; !ok {
		st.mu.Unlock()
		return
	}
	delete(st.released, seq)
	if s.log == nil {
		st.mu.Unlock()
		return
	}
	st.unrecord = append(st.unrecord, seq)
	start := !st.barrierOn
	st.barrierOn = true
	st.mu.Unlock()
	if start {
		s.barrier(clientID, st)
	}
}

// barrier writes the client's barrier record; once it is durable, the
// removals queued before it are done, and another barrier follows for
// those queued since.
func (s *sessions) barrier(clientID string, st *sessionState) {
	st.mu.Lock()
	batch := st.unrecord
	st.unrecord = nil
	st.mu.Unlock()
	done := completionFunc(func(uint64, error) {
		for _, seq := range batch {
			s.log.Remove(outKey(clientID, seq))
		}
		st.mu.Lock()
		again := len(st.unrecord) > 0
		st.barrierOn = again
		idle := !again && !st.attached
		st.mu.Unlock()
		if again {
			s.barrier(clientID, st)
			return
		}
		s.log.Remove(barrierKey(clientID))
		if idle {
			s.forgetIdle(clientID, st)
		}
	})
	if err := s.log.Put(barrierKey(clientID), &message.Message{}, done, 0); err != nil {
		// The log failed: its records cannot change any more either.
		st.mu.Lock()
		st.barrierOn = false
		st.mu.Unlock()
	}
}

// inboundHeld records an inbound QoS 2 packet id until PUBREL; with a log
// its record is written and done told when it is durable (true returned).
func (s *sessions) inboundHeld(clientID string, pid uint16, done message.Completion, token uint64) bool {
	if s.log == nil {
		return false
	}
	if err := s.log.Put(inKey(clientID, pid), &message.Message{}, done, token); err != nil {
		done.Durable(token, err)
	}
	return true
}

// inboundReleased forgets an inbound packet id's record (PUBREL, or a
// PUBREC with an error code). With done (PUBREL), done is told once the
// removal is durable — a barrier record written after it is, in the same
// log — and only then does the PUBCOMP go: sent earlier, a crash could
// recover the id, and a new message reusing it that first arrives as a
// DUP resend would be taken for the old one's and lost. It costs the
// PUBREL one group commit, QoS 2 only.
func (s *sessions) inboundReleased(clientID string, pid uint16, done func(error)) {
	if s.log == nil {
		if done != nil {
			done(nil)
		}
		return
	}
	s.log.Remove(inKey(clientID, pid))
	if done == nil {
		return
	}
	key := barrierKey(clientID)
	err := s.log.Put(key, &message.Message{}, completionFunc(func(_ uint64, err error) {
		if err == nil {
			s.log.Remove(key) // a recovered barrier is removed too: harmless
		}
		done(err)
	}), 0)
	if err != nil {
		done(err)
	}
}

// completionFunc adapts a function to message.Completion.
type completionFunc func(token uint64, err error)

func (f completionFunc) Durable(token uint64, err error) { f(token, err) }
