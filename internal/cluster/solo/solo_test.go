package solo

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
)

// listMachine records the entries it applies.
type listMachine struct {
	mu      sync.Mutex
	entries []string
	leader  chan struct{}
	once    sync.Once
}

func newList() *listMachine { return &listMachine{leader: make(chan struct{})} }

func (m *listMachine) Apply(_ uint64, data []byte) any {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries = append(m.entries, string(data))
	return len(m.entries)
}
func (m *listMachine) Snapshot() ([]byte, error) { return nil, errors.New("not used") }
func (m *listMachine) Restore([]byte) error      { return nil }
func (m *listMachine) LeaderChanged(_ uint64, local bool) {
	if local {
		m.once.Do(func() { close(m.leader) })
	}
}
func (m *listMachine) got() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.entries...)
}

func propose(t *testing.T, rl broker.ReplicatedLog, data string) any {
	t.Helper()
	ch := make(chan any, 1)
	rl.Propose([]byte(data), func(v any, err error) {
		if err != nil {
			ch <- err
			return
		}
		ch <- v
	})
	select {
	case v := <-ch:
		if err, ok := v.(error); ok {
			t.Fatalf("propose %s: %v", data, err)
		}
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("propose %s: no answer", data)
	}
	return nil
}

func TestOpensNothingUntilTheFirstQueue(t *testing.T) {
	dir := t.TempDir()
	s := New(Config{Dir: dir})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "wal")); !os.IsNotExist(err) {
		t.Fatalf("the WAL directory exists without a quorum queue: %v", err)
	}
	if _, err := s.Open(broker.QueueDef{ID: "a"}, newList()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Open after Close: %v", err)
	}
}

// A one-voter group elects itself at once, commits, and after a restart
// opens with every committed entry applied again, in order.
func TestGroupLeadsCommitsAndReplays(t *testing.T) {
	dir := t.TempDir()
	s := New(Config{Dir: dir})
	m := newList()
	def := broker.QueueDef{VHost: "/", ID: "q1"}
	rl, err := s.Open(def, m)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.leader:
	case <-time.After(time.Second): // well under the 1-2 s election timeout plus slack
		t.Fatal("the one voter did not lead at once")
	}
	if !rl.IsLeader() || !rl.Live(12345) {
		t.Fatal("IsLeader or Live false")
	}
	if _, err := s.Open(def, newList()); err == nil {
		t.Fatal("the same group opened twice")
	}
	for _, e := range []string{"a", "b", "c"} {
		propose(t, rl, e)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = New(Config{Dir: dir})
	defer s.Close()
	m2 := newList()
	rl, err = s.Open(def, m2)
	if err != nil {
		t.Fatal(err)
	}
	if got := m2.got(); len(got) != 3 || got[0] != "a" || got[2] != "c" {
		t.Fatalf("replayed before Open returned: %v, want [a b c]", got)
	}
	if v := propose(t, rl, "d"); v != 4 {
		t.Fatalf("the fourth entry applied as %v", v)
	}
	// Deleted, the group's state goes: the same id opens empty.
	rl.Delete()
	s.deleting.Wait()
	m3 := newList()
	if _, err := s.Open(def, m3); err != nil {
		t.Fatalf("reopening a deleted group: %v", err)
	}
	if got := m3.got(); len(got) != 0 {
		t.Fatalf("a deleted group reopened with %v", got)
	}
}

// A group whose queue is gone (deleted just before a crash) is removed
// from the WAL at the next start; open groups stay.
func TestRemoveOrphans(t *testing.T) {
	dir := t.TempDir()
	s := New(Config{Dir: dir})
	if n, err := s.RemoveOrphans(); n != 0 || err != nil {
		t.Fatalf("without a log: %d %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "wal")); !os.IsNotExist(err) {
		t.Fatal("RemoveOrphans created the log")
	}
	for _, id := range []string{"kept", "orphan"} {
		rl, err := s.Open(broker.QueueDef{ID: id}, newList())
		if err != nil {
			t.Fatal(err)
		}
		propose(t, rl, id)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = New(Config{Dir: dir})
	defer s.Close()
	if _, err := s.Open(broker.QueueDef{ID: "kept"}, newList()); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RemoveOrphans(); n != 1 || err != nil {
		t.Fatalf("removed %d groups (%v), want the orphan", n, err)
	}
	m := newList()
	if _, err := s.Open(broker.QueueDef{ID: "orphan"}, m); err != nil {
		t.Fatal(err)
	}
	if got := m.got(); len(got) != 0 {
		t.Fatalf("the orphan's state survived: %v", got)
	}
}
