package vfs

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
)

// MemFS is an in-memory file system that also tracks durability: Crash
// returns the file system a restarted process would find, holding only what
// was synced (plus, optionally, torn tails of what was not).
type MemFS struct {
	mu   sync.Mutex
	dirs map[string]*memDir
	free uint64
}

type memDir struct {
	entries map[string]*memNode // what the running process sees
	durable map[string]*memNode // what survives a crash: as of the last SyncDir
}

type memNode struct {
	mu     sync.Mutex
	data   []byte
	synced []byte // content as of the last Sync
	// dirty is where data may start to differ from synced: Sync copies
	// from there on, not the whole file.
	dirty int
}

// NewMem returns an empty in-memory file system with "/" present.
func NewMem() *MemFS {
	m := &MemFS{dirs: map[string]*memDir{}, free: 1 << 40}
	m.dirs["/"] = newMemDir()
	return m
}

// NewCrashable is NewMem; it is named for what the tests use it for.
func NewCrashable() *MemFS { return NewMem() }

func newMemDir() *memDir {
	return &memDir{entries: map[string]*memNode{}, durable: map[string]*memNode{}}
}

// SetFreeSpace sets what FreeSpace reports.
func (m *MemFS) SetFreeSpace(n uint64) {
	m.mu.Lock()
	m.free = n
	m.mu.Unlock()
}

func clean(name string) (dir, base string) {
	name = filepath.Clean("/" + name)
	return filepath.Dir(name), filepath.Base(name)
}

func (m *MemFS) dir(dir string) (*memDir, error) {
	d, ok := m.dirs[filepath.Clean("/"+dir)]
	if !ok {
		return nil, fmt.Errorf("vfs: %s: %w", dir, ErrNotExist)
	}
	return d, nil
}

// Create implements FS.
func (m *MemFS) Create(name string) (File, error) {
	dir, base := clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.dir(dir)
	if err != nil {
		return nil, err
	}
	n := &memNode{}
	d.entries[base] = n
	return &memFile{node: n, name: name, writable: true}, nil
}

func (m *MemFS) lookup(name string) (*memNode, error) {
	dir, base := clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.dir(dir)
	if err != nil {
		return nil, err
	}
	n, ok := d.entries[base]
	if !ok {
		return nil, fmt.Errorf("vfs: %s: %w", name, ErrNotExist)
	}
	return n, nil
}

// Open implements FS.
func (m *MemFS) Open(name string) (File, error) {
	n, err := m.lookup(name)
	if err != nil {
		return nil, err
	}
	return &memFile{node: n, name: name}, nil
}

// OpenWrite implements FS.
func (m *MemFS) OpenWrite(name string) (File, error) {
	n, err := m.lookup(name)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return &memFile{node: n, name: name, writable: true, pos: int64(len(n.data))}, nil
}

// Remove implements FS.
func (m *MemFS) Remove(name string) error {
	dir, base := clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if d, ok := m.dirs[filepath.Clean("/"+name)]; ok {
		if len(d.entries) > 0 {
			return fmt.Errorf("vfs: remove %s: directory not empty", name)
		}
		delete(m.dirs, filepath.Clean("/"+name))
		return nil
	}
	d, err := m.dir(dir)
	if err != nil {
		return err
	}
	if _, ok := d.entries[base]; !ok {
		return fmt.Errorf("vfs: %s: %w", name, ErrNotExist)
	}
	delete(d.entries, base)
	return nil
}

// Rename implements FS.
func (m *MemFS) Rename(oldname, newname string) error {
	od, ob := clean(oldname)
	nd, nb := clean(newname)
	m.mu.Lock()
	defer m.mu.Unlock()
	from, err := m.dir(od)
	if err != nil {
		return err
	}
	to, err := m.dir(nd)
	if err != nil {
		return err
	}
	n, ok := from.entries[ob]
	if !ok {
		return fmt.Errorf("vfs: %s: %w", oldname, ErrNotExist)
	}
	delete(from.entries, ob)
	to.entries[nb] = n
	return nil
}

// MkdirAll implements FS. Directories are durable as soon as they exist.
func (m *MemFS) MkdirAll(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := filepath.Clean("/" + dir)
	for {
		if _, ok := m.dirs[p]; !ok {
			m.dirs[p] = newMemDir()
		}
		if p == "/" {
			return nil
		}
		p = filepath.Dir(p)
	}
}

// List implements FS: files and subdirectories of dir.
func (m *MemFS) List(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.dir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for n := range d.entries {
		names = append(names, n)
	}
	p := filepath.Clean("/" + dir)
	for sub := range m.dirs {
		if sub != p && filepath.Dir(sub) == p {
			names = append(names, filepath.Base(sub))
		}
	}
	sort.Strings(names)
	return names, nil
}

// SyncDir implements FS.
func (m *MemFS) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.dir(dir)
	if err != nil {
		return err
	}
	d.durable = make(map[string]*memNode, len(d.entries))
	for k, v := range d.entries {
		d.durable[k] = v
	}
	return nil
}

// FreeSpace implements FS.
func (m *MemFS) FreeSpace(string) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.free, nil
}

// Crash returns the file system as a restarted process would find it:
// only synced directory entries, each file holding its synced content plus,
// if tornTail is given, the first tornTail(path, unsynced) bytes of what was
// written after the last sync (a torn write). The receiver keeps working for
// goroutines of the "dead" process, but nothing they do reaches the result.
func (m *MemFS) Crash(tornTail func(path string, unsynced int) int) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := &MemFS{dirs: map[string]*memDir{}, free: m.free}
	for p, d := range m.dirs {
		nd := newMemDir()
		for name, n := range d.durable {
			n.mu.Lock()
			data := append([]byte(nil), n.synced...)
			if tornTail != nil && len(n.data) > len(n.synced) && string(n.data[:len(n.synced)]) == string(n.synced) {
				k := tornTail(filepath.Join(p, name), len(n.data)-len(n.synced))
				k = max(0, min(k, len(n.data)-len(n.synced)))
				data = append(data, n.data[len(n.synced):len(n.synced)+k]...)
			}
			n.mu.Unlock()
			c := &memNode{data: data, synced: append([]byte(nil), data...), dirty: len(data)}
			nd.entries[name] = c
			nd.durable[name] = c
		}
		out.dirs[p] = nd
	}
	return out
}

// SectorSize is the unit CrashSectors keeps or loses: a disk writes a
// sector whole or not at all, but the sectors of one write in any order.
const SectorSize = 512

// CrashSectors is Crash for writes in place: each file holds its synced
// content, plus those of the sectors written since its last Sync (changed,
// or past its synced end) that keep(path, sector) picks, in any pattern, as
// a power cut during the write-back of a Sync may leave them. A picked
// sector past the synced end extends the file, with zeros in the sectors
// not picked before it.
func (m *MemFS) CrashSectors(keep func(path string, sector int) bool) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := &MemFS{dirs: map[string]*memDir{}, free: m.free}
	for p, d := range m.dirs {
		nd := newMemDir()
		for name, n := range d.durable {
			path := filepath.Join(p, name)
			n.mu.Lock()
			data := append([]byte(nil), n.synced...)
			for i := 0; i*SectorSize < len(n.data); i++ {
				lo, hi := i*SectorSize, min((i+1)*SectorSize, len(n.data))
				old := n.synced[min(lo, len(n.synced)):min(hi, len(n.synced))]
				if hi <= len(n.synced) && string(old) == string(n.data[lo:hi]) || !keep(path, i) {
					continue
				}
				if len(data) < hi {
					data = append(data, make([]byte, hi-len(data))...)
				}
				copy(data[lo:hi], n.data[lo:hi])
			}
			n.mu.Unlock()
			c := &memNode{data: data, synced: append([]byte(nil), data...), dirty: len(data)}
			nd.entries[name] = c
			nd.durable[name] = c
		}
		out.dirs[p] = nd
	}
	return out
}

type memFile struct {
	node     *memNode
	name     string
	writable bool
	pos      int64       // where Write writes, as an OS file's offset
	closed   atomic.Bool // Close may race a Sync on another goroutine, as with os files
}

func (f *memFile) Write(p []byte) (int, error) {
	if !f.writable || f.closed.Load() {
		return 0, fmt.Errorf("vfs: write %s: file not open for writing", f.name)
	}
	f.node.mu.Lock()
	f.writeAtLocked(p, f.pos)
	f.pos += int64(len(p))
	f.node.mu.Unlock()
	return len(p), nil
}

func (f *memFile) writeAtLocked(p []byte, off int64) {
	f.node.dirty = min(f.node.dirty, int(off))
	if off == int64(len(f.node.data)) {
		f.node.data = append(f.node.data, p...)
		return
	}
	if end := off + int64(len(p)); end > int64(len(f.node.data)) {
		f.node.data = append(f.node.data, make([]byte, end-int64(len(f.node.data)))...)
	}
	copy(f.node.data[off:], p)
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	if !f.writable || f.closed.Load() {
		return 0, fmt.Errorf("vfs: write %s: file not open for writing", f.name)
	}
	if off < 0 {
		return 0, fmt.Errorf("vfs: negative offset")
	}
	f.node.mu.Lock()
	f.writeAtLocked(p, off)
	f.node.mu.Unlock()
	return len(p), nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.node.mu.Lock()
	defer f.node.mu.Unlock()
	if off < 0 {
		return 0, fmt.Errorf("vfs: negative offset")
	}
	if off >= int64(len(f.node.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.node.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Sync fails on a closed file, as the operating system's does: a store
// that closes a file under a running fsync must see it here too.
func (f *memFile) Sync() error {
	if f.closed.Load() {
		return fmt.Errorf("vfs: sync %s: %w", f.name, os.ErrClosed)
	}
	f.node.mu.Lock()
	n := f.node
	n.synced = append(n.synced[:min(n.dirty, len(n.synced))], n.data[min(n.dirty, len(n.data)):]...)
	n.dirty = len(n.data)
	f.node.mu.Unlock()
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.node.mu.Lock()
	defer f.node.mu.Unlock()
	f.node.dirty = min(f.node.dirty, int(size))
	if size < int64(len(f.node.data)) {
		f.node.data = f.node.data[:size:size]
	} else {
		f.node.data = append(f.node.data, make([]byte, size-int64(len(f.node.data)))...)
	}
	f.pos = size
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.node.mu.Lock()
	defer f.node.mu.Unlock()
	return int64(len(f.node.data)), nil
}

func (f *memFile) Close() error {
	f.closed.Store(true)
	return nil
}
