package solo

import (
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
)

// gateMachine is listMachine whose Apply of "block" waits for release:
// the group's goroutine is mid-turn, as a broker's Apply under load may
// be, when its queue is deleted.
type gateMachine struct {
	*listMachine
	entered chan struct{}
	release chan struct{}
}

func (m gateMachine) Apply(i uint64, data []byte) any {
	if string(data) == "block" {
		close(m.entered)
		<-m.release
	}
	return m.listMachine.Apply(i, data)
}

// review7 F1: a quorum queue deleted (Delete stops its group on a
// goroutine) just before the server's RemoveOrphans. RemoveOrphans must
// leave the state of a group that is still stopping alone: removing it
// under the running group made raft panic ("wal: group removed") and
// the node die during recovery. Delete removes the state itself.
func TestRemoveOrphansLeavesAStoppingGroupAlone(t *testing.T) {
	dir := t.TempDir()
	s := New(Config{Dir: dir})
	m := gateMachine{newList(), make(chan struct{}), make(chan struct{})}
	rl, err := s.Open(broker.QueueDef{VHost: "/", ID: "q"}, m)
	if err != nil {
		t.Fatal(err)
	}
	<-m.leader
	rl.Propose([]byte("block"), func(any, error) {})
	for range 3 {
		rl.Propose([]byte("more"), func(any, error) {})
	}
	select {
	case <-m.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the entry was not applied")
	}
	rl.Delete() // its group cannot stop before Apply returns
	n, err := s.RemoveOrphans()
	if err != nil || n != 0 {
		t.Fatalf("RemoveOrphans with the deleted group still stopping: %d removed, %v", n, err)
	}
	close(m.release)
	if err := s.Close(); err != nil { // waits for Delete's goroutine
		t.Fatal(err)
	}

	// Delete removed the state: a restart finds no orphan.
	s = New(Config{Dir: dir})
	defer s.Close()
	if n, err := s.RemoveOrphans(); err != nil || n != 0 {
		t.Fatalf("after the restart: %d orphans removed, %v (Delete left its group's state)", n, err)
	}
}
