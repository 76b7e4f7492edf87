package meta

import (
	"errors"
	"fmt"

	"github.com/tern-broker/tern/internal/broker"
)

// Entry kinds, the first byte of every entry. Values are never reused: a
// node that meets a kind it does not know (a newer version's) fails that
// entry rather than misreading it.
const (
	kindCommand byte = 1
	kindBarrier byte = 2
	// 3 is internal/cluster's membership records (members.go), which
	// never reach this package.
)

// Snapshot format version, the first byte of a snapshot.
const snapshotV1 byte = 1

// EncodeCommand is the entry that applies c on every node.
func EncodeCommand(c broker.Command) []byte {
	return append([]byte{kindCommand}, broker.EncodeCommand(c)...)
}

// EncodeBarrier is an entry that changes nothing; applying it on this node
// means every entry committed before it is applied here too.
func EncodeBarrier() []byte { return []byte{kindBarrier} }

// Entry is a decoded entry: a command, or a barrier (Command nil).
type Entry struct {
	Command broker.Command
}

// ErrEmpty is an entry without a kind byte.
var ErrEmpty = errors.New("meta: empty entry")

// Decode decodes an entry.
func Decode(data []byte) (Entry, error) {
	if len(data) == 0 {
		return Entry{}, ErrEmpty
	}
	switch data[0] {
	case kindCommand:
		c, err := broker.DecodeCommand(data[1:])
		if err != nil {
			return Entry{}, fmt.Errorf("meta: command entry: %w", err)
		}
		return Entry{Command: c}, nil
	case kindBarrier:
		if len(data) != 1 {
			return Entry{}, fmt.Errorf("meta: barrier entry with %d bytes of payload", len(data)-1)
		}
		return Entry{}, nil
	}
	return Entry{}, fmt.Errorf("meta: unknown entry kind %d (written by a newer version?)", data[0])
}
