package solo

import (
	"path/filepath"
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

// review7 F5: a node whose quorum queues are all gone — deleted, or
// deleted just before a crash (an orphan) — opens the log at the next
// start only to clean it up, starts no Raft host (its ticker), and
// leaves no log behind, so the start after opens nothing at all, as the
// package says. Before, any file in DATA_DIR/quorum/wal started the host
// at every start, forever. A quorum queue declared later works.
func TestNoQuorumQueueLeftRunsNothing(t *testing.T) {
	for _, deleted := range []bool{true, false} {
		dir := t.TempDir()
		s := New(Config{Dir: dir})
		rl, err := s.Open(broker.QueueDef{VHost: "/", ID: "gone"}, newList())
		if err != nil {
			t.Fatal(err)
		}
		propose(t, rl, "m")
		if deleted {
			rl.Delete()
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		s = New(Config{Dir: dir})
		n, err := s.RemoveOrphans()
		if want := map[bool]int{true: 0, false: 1}[deleted]; err != nil || n != want {
			t.Fatalf("deleted %v: RemoveOrphans removed %d, %v; want %d", deleted, n, err, want)
		}
		s.mu.Lock()
		host, w := s.host, s.wal
		s.mu.Unlock()
		if host != nil || w != nil {
			t.Fatalf("deleted %v: no quorum queue left, yet the Raft host (%v) or the log (%v) is open", deleted, host != nil, w != nil)
		}
		if names, _ := s.cfg.FS.List(filepath.Join(dir, "wal")); len(names) != 0 {
			t.Fatalf("deleted %v: the log of no quorum queue is still there: %v", deleted, names)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		s = New(Config{Dir: dir})
		if n, err := s.RemoveOrphans(); n != 0 || err != nil || s.wal != nil {
			t.Fatalf("deleted %v: the next start: %d removed, %v, log open %v", deleted, n, err, s.wal != nil)
		}
		m := newList()
		rl, err = s.Open(broker.QueueDef{VHost: "/", ID: "new"}, m)
		if err != nil {
			t.Fatal(err)
		}
		propose(t, rl, "n")
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// review7 F5, the replay case: a start whose definitions log replays a
// quorum queue's declare and then its delete opens the group (and the
// Raft host) and deletes it before RemoveOrphans; with nothing open or
// stopping then, RemoveOrphans stops the host and deletes the log, rather
// than leaving that to the start after.
func TestRemoveOrphansAfterTheLastQueueWasDeletedThisRun(t *testing.T) {
	dir := t.TempDir()
	s := New(Config{Dir: dir})
	defer s.Close()
	rl, err := s.Open(broker.QueueDef{VHost: "/", ID: "replayed"}, newList())
	if err != nil {
		t.Fatal(err)
	}
	propose(t, rl, "m")
	rl.Delete()
	s.deleting.Wait()
	if n, err := s.RemoveOrphans(); n != 0 || err != nil {
		t.Fatalf("RemoveOrphans: %d, %v", n, err)
	}
	s.mu.Lock()
	host, w := s.host, s.wal
	s.mu.Unlock()
	if host != nil || w != nil {
		t.Fatalf("the last quorum queue deleted: Raft host open %v, log open %v", host != nil, w != nil)
	}
	if names, _ := s.cfg.FS.List(filepath.Join(dir, "wal")); len(names) != 0 {
		t.Fatalf("the log of no quorum queue is still there: %v", names)
	}
	m := newList()
	rl, err = s.Open(broker.QueueDef{VHost: "/", ID: "next"}, m)
	if err != nil {
		t.Fatal(err)
	}
	propose(t, rl, "n")
}
