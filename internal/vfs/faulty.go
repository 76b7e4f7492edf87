package vfs

import (
	"errors"
	"syscall"
)

// Op names an operation the Faulty file system may fail.
type Op int

// Operations.
const (
	OpCreate Op = iota
	OpWrite
	OpSync
	OpRename
	OpRemove
	OpSyncDir
	OpRead
)

// ErrNoSpace and ErrIO are the errors disks give; Faulty injects them.
var (
	ErrNoSpace error = syscall.ENOSPC
	ErrIO      error = syscall.EIO
)

// Injector decides whether an operation fails. For writes, n is the length
// of the write; returning a non-nil error with torn > 0 writes the first
// torn bytes before failing, as a disk filling up mid-write does.
type Injector func(op Op, path string, n int) (torn int, err error)

// Faulty wraps a file system and fails operations its injector picks.
type Faulty struct {
	FS
	inject Injector
}

// NewFaulty wraps fsys.
func NewFaulty(fsys FS, inject Injector) *Faulty { return &Faulty{FS: fsys, inject: inject} }

// SetInjector replaces the injector; nil stops injecting.
func (f *Faulty) SetInjector(inject Injector) { f.inject = inject }

func (f *Faulty) check(op Op, path string, n int) (int, error) {
	if f.inject == nil {
		return 0, nil
	}
	return f.inject(op, path, n)
}

// Create implements FS.
func (f *Faulty) Create(name string) (File, error) {
	if _, err := f.check(OpCreate, name, 0); err != nil {
		return nil, err
	}
	file, err := f.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return &faultyFile{File: file, fs: f, name: name}, nil
}

// Open implements FS.
func (f *Faulty) Open(name string) (File, error) {
	file, err := f.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return &faultyFile{File: file, fs: f, name: name}, nil
}

// OpenWrite implements FS.
func (f *Faulty) OpenWrite(name string) (File, error) {
	file, err := f.FS.OpenWrite(name)
	if err != nil {
		return nil, err
	}
	return &faultyFile{File: file, fs: f, name: name}, nil
}

// Rename implements FS.
func (f *Faulty) Rename(oldname, newname string) error {
	if _, err := f.check(OpRename, newname, 0); err != nil {
		return err
	}
	return f.FS.Rename(oldname, newname)
}

// Remove implements FS.
func (f *Faulty) Remove(name string) error {
	if _, err := f.check(OpRemove, name, 0); err != nil {
		return err
	}
	return f.FS.Remove(name)
}

// SyncDir implements FS.
func (f *Faulty) SyncDir(dir string) error {
	if _, err := f.check(OpSyncDir, dir, 0); err != nil {
		return err
	}
	return f.FS.SyncDir(dir)
}

type faultyFile struct {
	File
	fs   *Faulty
	name string
}

func (f *faultyFile) Write(p []byte) (int, error) {
	if torn, err := f.fs.check(OpWrite, f.name, len(p)); err != nil {
		torn = max(0, min(torn, len(p)))
		if torn > 0 {
			n, werr := f.File.Write(p[:torn])
			return n, errors.Join(err, werr)
		}
		return 0, err
	}
	return f.File.Write(p)
}

func (f *faultyFile) WriteAt(p []byte, off int64) (int, error) {
	if torn, err := f.fs.check(OpWrite, f.name, len(p)); err != nil {
		torn = max(0, min(torn, len(p)))
		if torn > 0 {
			n, werr := f.File.WriteAt(p[:torn], off)
			return n, errors.Join(err, werr)
		}
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *faultyFile) Sync() error {
	if _, err := f.fs.check(OpSync, f.name, 0); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *faultyFile) ReadAt(p []byte, off int64) (int, error) {
	if _, err := f.fs.check(OpRead, f.name, len(p)); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}
