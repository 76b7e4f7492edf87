package store

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tern-broker/tern/internal/vfs"
)

// queueDirOps counts what is done to the directories under queues/.
type queueDirOps struct {
	vfs.FS
	n atomic.Int64
}

func (c *queueDirOps) count(path string) {
	if strings.Contains(path, "/queues/") {
		c.n.Add(1)
	}
}

func (c *queueDirOps) List(dir string) ([]string, error) { c.count(dir); return c.FS.List(dir) }
func (c *queueDirOps) Remove(name string) error          { c.count(name); return c.FS.Remove(name) }
func (c *queueDirOps) SyncDir(dir string) error          { c.count(dir + "/"); return c.FS.SyncDir(dir) }

// TestDeletingAnEmptyQueueLogTouchesNoDirectory: a queue that never held a
// message never had a directory, so deleting it costs no file system call
// (issue 11: 10,000 queues declared and deleted one by one); one that held
// a message has its directory removed.
func TestDeletingAnEmptyQueueLogTouchesNoDirectory(t *testing.T) {
	t.Parallel()
	m := vfs.NewMem()
	fsys := &queueDirOps{FS: m}
	st, err := Open(fsys, "/data", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	if _, err := st.QueueLog("empty"); err != nil {
		t.Fatal(err)
	}
	opened := fsys.n.Load() // the open looks for a previous run's segments
	if err := st.DeleteQueueLog("empty"); err != nil {
		t.Fatal(err)
	}
	if n := fsys.n.Load() - opened; n != 0 {
		t.Fatalf("deleting a queue log that never held a message made %d file system calls", n)
	}

	l, err := st.QueueLog("used")
	if err != nil {
		t.Fatal(err)
	}
	r := newResults()
	if err := l.Append(1, msg(1), r, 1); err != nil {
		t.Fatal(err)
	}
	r.wait(t, 1)
	before := fsys.n.Load()
	if err := st.DeleteQueueLog("used"); err != nil {
		t.Fatal(err)
	}
	if fsys.n.Load() == before {
		t.Fatal("deleting a queue log that held a message touched nothing")
	}
	if _, err := m.List("/data/queues/used"); !errors.Is(err, vfs.ErrNotExist) {
		t.Fatalf("the used queue's directory is still there: %v", err)
	}
}

// QueueLogExists: a log is there once open, or on disk once it held a
// message (also after the store is reopened); never for one that never
// held a message and is not open.
func TestQueueLogExists(t *testing.T) {
	t.Parallel()
	m := vfs.NewMem()
	st, err := Open(m, "/data", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.QueueLogExists("q") {
		t.Fatal("a queue log never opened exists")
	}
	l, err := st.QueueLog("q")
	if err != nil {
		t.Fatal(err)
	}
	if !st.QueueLogExists("q") {
		t.Fatal("an open queue log does not exist")
	}
	if _, err := st.QueueLog("empty"); err != nil {
		t.Fatal(err)
	}
	r := newResults()
	if err := l.Append(1, msg(1), r, 1); err != nil {
		t.Fatal(err)
	}
	r.wait(t, 1)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = Open(m, "/data", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !st.QueueLogExists("q") {
		t.Fatal("a queue log that held a message does not exist after a reopen")
	}
	if st.QueueLogExists("empty") {
		t.Fatal("a queue log that never held a message exists after a reopen")
	}
}
