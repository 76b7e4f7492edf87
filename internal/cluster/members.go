package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
)

// The cluster's membership is replicated metadata: records in the
// metadata group's log (kindMembership entries, beside meta's commands
// and barriers) that every node applies in order. memberState is what
// they build: the members (name, address, role, replica id) and the
// tombstones of removed ones. It is a pure function of the log, so every
// node — a restarted one, or one added later that replays the log — holds
// the same list at the same index, and a quorum queue declared at that
// index is placed alike everywhere (membership.go).

// kindMembership is the first byte of a membership record in the metadata
// log. meta's kinds are 1 (command) and 2 (barrier); meta.Decode refuses
// 3, so it never reaches the broker.
const kindMembership byte = 3

// Membership operations.
const (
	// opFounders records the initial membership (the --peers list) if
	// none is recorded yet: every founding node proposes it at start-up,
	// the first applied wins, before any client can declare anything.
	opFounders = "founders"
	opAdd      = "add"
	opRemove   = "remove"
	// opPromote records a standby's promotion (PromoteMember): quorum
	// queues declared later place it as a voter.
	opPromote = "promote"
)

// memberOp is one membership record.
type memberOp struct {
	Op      string   `json:"op"`
	Members []Member `json:"members,omitempty"` // opFounders
	// Cluster and Node (opFounders) are the cluster id the proposing
	// node drew and its name (clusterid.go): the first founders record
	// applied names the cluster; every one records its node's start.
	Cluster string  `json:"cluster,omitempty"`
	Node    string  `json:"node,omitempty"`
	Member  *Member `json:"member,omitempty"` // opAdd, opRemove, opPromote (only Name is read for the last two)
}

// memberState is the membership as of some index of the metadata log.
type memberState struct {
	// Set: a founders record was applied. Before it (the log of a
	// cluster started before membership was recorded) the members are
	// the node's --peers.
	Set     bool     `json:"set"`
	Members []Member `json:"members"`
	// Removed are the tombstones: a removed member's name and replica id
	// are never used again.
	Removed []Member `json:"removed,omitempty"`
	// Cluster is the cluster's identity: the id drawn by the node whose
	// founders record applied first ("" in a log written before ids).
	Cluster string `json:"cluster,omitempty"`
	// Started maps each founding node that has started to the id it drew
	// at that start: a node that comes back with a new data directory
	// draws another, which tells a lost data directory from a founder
	// starting late (clusterid.go).
	Started map[string]string `json:"started,omitempty"`
}

// Errors of membership changes.
var (
	// ErrNodeRemoved refuses a name (or replica id) that was removed.
	ErrNodeRemoved = errors.New("cluster: that node name was removed from the cluster, and replica ids are never reused: add the node under a new name, with a fresh data directory")
	// ErrBadMember is a malformed name or address.
	ErrBadMember = errors.New("cluster: bad node")
	// ErrMemberConflict is an add that clashes with a member.
	ErrMemberConflict = errors.New("cluster: conflicting member")
)

// MemberID is the Raft replica id of the node named name: the FNV-64a hash
// of the name, as config.NodeIDFor computes it for the --peers list.
func MemberID(name string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return h.Sum64()
}

var memberName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// checkMember validates a member to add: the rules of a --peers entry.
func checkMember(m Member) error {
	if !memberName.MatchString(m.Name) {
		return fmt.Errorf("%w: node name %q must be 1-64 letters, digits, '.', '_' or '-'", ErrBadMember, m.Name)
	}
	if m.ID == 0 || m.ID != MemberID(m.Name) {
		return fmt.Errorf("%w: node %q has replica id %#x, not the hash of its name (%#x)", ErrBadMember, m.Name, m.ID, MemberID(m.Name))
	}
	host, port, err := net.SplitHostPort(m.Addr)
	if err != nil || host == "" {
		return fmt.Errorf("%w: address %q is not host:port", ErrBadMember, m.Addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("%w: address %q needs a port 1-65535", ErrBadMember, m.Addr)
	}
	return nil
}

// maxMemberRecord bounds a membership record (a founders list of a few
// hundred nodes fits; a corrupt length does not allocate).
const maxMemberRecord = 1 << 20

// encodeMemberOp is the metadata entry carrying op.
func encodeMemberOp(op memberOp) []byte {
	b, err := json.Marshal(op)
	if err != nil {
		panic(err) // plain structs: cannot fail
	}
	return append([]byte{kindMembership}, b...)
}

// decodeMemberOp decodes a membership record; it checks the shape, not
// the membership rules (apply does).
func decodeMemberOp(data []byte) (memberOp, error) {
	var op memberOp
	if len(data) == 0 || data[0] != kindMembership {
		return op, errors.New("cluster: not a membership record")
	}
	if len(data) > maxMemberRecord {
		return op, fmt.Errorf("cluster: membership record of %d bytes", len(data))
	}
	dec := json.NewDecoder(bytes.NewReader(data[1:]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&op); err != nil {
		return op, fmt.Errorf("cluster: membership record: %w", err)
	}
	if dec.More() {
		return op, errors.New("cluster: membership record: trailing data")
	}
	switch op.Op {
	case opFounders:
		if len(op.Members) == 0 || op.Member != nil {
			return op, errors.New("cluster: founders record without members")
		}
	case opAdd, opRemove, opPromote:
		if op.Member == nil || len(op.Members) != 0 {
			return op, fmt.Errorf("cluster: %s record without one member", op.Op)
		}
	default:
		return op, fmt.Errorf("cluster: membership record with unknown op %q (written by a newer version?)", op.Op)
	}
	return op, nil
}

// clone is a deep copy (the lists are shared with readers otherwise).
func (s memberState) clone() memberState {
	s.Members = slices.Clone(s.Members)
	s.Removed = slices.Clone(s.Removed)
	s.Started = maps.Clone(s.Started)
	return s
}

// find returns the member named name.
func (s *memberState) find(name string) (Member, bool) {
	for _, m := range s.Members {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

// tombstoned reports whether m's name or id was removed.
func (s *memberState) tombstoned(m Member) bool {
	return slices.ContainsFunc(s.Removed, func(r Member) bool { return r.Name == m.Name || r.ID == m.ID })
}

// apply applies one record. It is deterministic (every node applies the
// same records in the same order), and an error changes nothing: it goes
// back to the node that proposed the record. Adding a member again with
// the same address and role, and removing a removed one, change nothing
// and succeed, so a retried proposal is harmless.
func (s *memberState) apply(op memberOp) error {
	switch op.Op {
	case opFounders:
		if !s.Set {
			s.Set = true
			s.Members = slices.Clone(op.Members)
			s.Cluster = op.Cluster
		}
		if op.Node != "" && op.Cluster != "" && s.Started[op.Node] == "" {
			if s.Started == nil {
				s.Started = map[string]string{}
			}
			s.Started[op.Node] = op.Cluster
		}
		return nil
	case opAdd:
		m := *op.Member
		if !s.Set {
			return errors.New("cluster: the membership is not recorded yet (the cluster is still starting)")
		}
		if err := checkMember(m); err != nil {
			return err
		}
		if s.tombstoned(m) {
			return fmt.Errorf("%w (%q)", ErrNodeRemoved, m.Name)
		}
		for _, o := range s.Members {
			switch {
			case o.Name == m.Name && o.Addr == m.Addr && o.Standby == m.Standby:
				return nil // added already
			case o.Name == m.Name:
				return fmt.Errorf("%w: %s is already a member at %s (%s)", ErrMemberConflict, o.Name, o.Addr, roleName(o.Standby))
			case o.ID == m.ID:
				return fmt.Errorf("%w: %q hashes to the replica id of member %s; choose another name", ErrMemberConflict, m.Name, o.Name)
			case o.Addr == m.Addr:
				return fmt.Errorf("%w: member %s already has address %s", ErrMemberConflict, o.Name, m.Addr)
			}
		}
		s.Members = append(s.Members, m)
		return nil
	case opRemove:
		name := op.Member.Name
		i := slices.IndexFunc(s.Members, func(m Member) bool { return m.Name == name })
		if i < 0 {
			if slices.ContainsFunc(s.Removed, func(r Member) bool { return r.Name == name }) {
				return nil // removed already
			}
			return fmt.Errorf("%w: %q", ErrUnknownNode, name)
		}
		m := s.Members[i]
		if !m.Standby && !slices.ContainsFunc(s.Members, func(o Member) bool { return o.Name != name && !o.Standby }) {
			return fmt.Errorf("cluster: %s is the last voter; it cannot be removed", name)
		}
		s.Members = slices.Delete(slices.Clone(s.Members), i, i+1)
		s.Removed = append(s.Removed, m)
		return nil
	case opPromote:
		i := slices.IndexFunc(s.Members, func(m Member) bool { return m.Name == op.Member.Name })
		if i < 0 {
			return fmt.Errorf("%w: %q", ErrUnknownNode, op.Member.Name)
		}
		s.Members = slices.Clone(s.Members)
		s.Members[i].Standby = false
		return nil
	}
	return fmt.Errorf("cluster: unknown membership op %q", op.Op)
}

func roleName(standby bool) string {
	if standby {
		return "standby"
	}
	return "voter"
}
