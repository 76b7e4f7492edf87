package broker

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// Proposed is a client's definition change as this node proposes it to the
// metadata group: the command and an id unique to the proposal. The
// cluster proposes the same bytes again when a proposal times out in a
// leader change, and the first may still commit: both copies are then in
// the log, possibly around another node's change (a declare, a delete of
// it, the declare's copy). Applying a copy would undo that change — bring
// a deleted queue back, a removed binding, a deleted exchange. So
// ApplyReplicated applies a proposal's first copy only: it remembers the
// ids of the last maxProposals proposals applied, deterministically (they
// are in the metadata snapshot too), so every node skips the same copies.
type Proposed struct {
	ID      uint64
	Command Command
}

func (Proposed) command() {}

// maxProposals bounds the proposal ids remembered. A copy comes within the
// proposer's deadline (proposeTimeout, 15 s) of the first; more than this
// many definition changes committed in between would let it through.
const maxProposals = 16384

func newProposalID() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:]) | 1 // never 0
}

// proposalSet is the ids of the proposals applied last, oldest first.
type proposalSet struct {
	mu    sync.Mutex
	seen  map[uint64]struct{}
	order []uint64
}

// first records id and reports whether it is new: false is a copy.
func (p *proposalSet) first(id uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, dup := p.seen[id]; dup {
		return false
	}
	if p.seen == nil {
		p.seen = map[uint64]struct{}{}
	}
	if len(p.order) == maxProposals {
		delete(p.seen, p.order[0])
		p.order = p.order[1:]
	}
	p.seen[id] = struct{}{}
	p.order = append(p.order, id)
	return true
}

// encode returns the ids, oldest first, 8 bytes each; nil when empty.
func (p *proposalSet) encode() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.order) == 0 {
		return nil
	}
	out := make([]byte, 0, 8*len(p.order))
	for _, id := range p.order {
		out = binary.BigEndian.AppendUint64(out, id)
	}
	return out
}

// reset replaces the ids with a snapshot's (encode's bytes).
func (p *proposalSet) reset(raw []byte) error {
	if len(raw)%8 != 0 || len(raw)/8 > maxProposals {
		return fmt.Errorf("broker: snapshot's proposal ids: %d bytes", len(raw))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen, p.order = map[uint64]struct{}{}, make([]uint64, 0, len(raw)/8)
	for i := 0; i < len(raw); i += 8 {
		id := binary.BigEndian.Uint64(raw[i:])
		if _, dup := p.seen[id]; !dup {
			p.seen[id] = struct{}{}
			p.order = append(p.order, id)
		}
	}
	return nil
}

// proposedJSON is a Proposed command's encoding: the id beside the inner
// command's own encoding (EncodeCommand), so a node's definitions log,
// which never holds one, is unchanged.
type proposedJSON struct {
	Proposal uint64          `json:"proposal"`
	Command  json.RawMessage `json:"command"`
}

var proposedPrefix = []byte(`{"proposal":`)

func encodeProposed(p Proposed) []byte {
	if _, nested := p.Command.(Proposed); nested || p.Command == nil {
		panic("broker: a Proposed command must wrap one other command")
	}
	b, _ := json.Marshal(proposedJSON{Proposal: p.ID, Command: EncodeCommand(p.Command)})
	return b
}

// decodeProposed decodes a Proposed command; ok is false for any other.
func decodeProposed(payload []byte) (c Command, ok bool, err error) {
	if !bytes.HasPrefix(payload, proposedPrefix) {
		return nil, false, nil
	}
	var j proposedJSON
	if err := json.Unmarshal(payload, &j); err != nil {
		return nil, true, fmt.Errorf("undecodable proposal: %w", err)
	}
	if j.Proposal == 0 || bytes.HasPrefix(j.Command, proposedPrefix) {
		return nil, true, errors.New("undecodable proposal: no id, or a proposal in a proposal")
	}
	inner, err := DecodeCommand(j.Command)
	if err != nil {
		return nil, true, err
	}
	return Proposed{ID: j.Proposal, Command: inner}, true, nil
}

// snapshotProposals is what DefinitionsSnapshot appends after the
// definitions document: a second JSON value, which a snapshot written
// before it existed lacks.
type snapshotProposals struct {
	Proposals []byte `json:"proposals"` // proposalSet.encode, base64 in JSON
}
