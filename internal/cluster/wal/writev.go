package wal

import (
	"errors"
	"io"
	"syscall"

	"golang.org/x/sys/unix"
)

// rawFile is the operating system's file under a vfs.File (vfs.Default's
// files embed *os.File): the writer hands a batch of parts to one writev
// instead of copying them into one buffer. Other file systems (the tests'
// in-memory and fault-injecting ones) get the parts by Write.
type rawFile interface {
	SyscallConn() (syscall.RawConn, error)
}

// maxIov bounds the parts of one writev call (Linux's IOV_MAX).
const maxIov = 1024

// writev writes every byte of parts, in order, at the file's position.
// A short write (a signal, a full disk) continues where it stopped; an
// error is returned as Write's would be.
func writev(f rawFile, parts [][]byte) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	for len(parts) > 0 {
		if len(parts[0]) == 0 {
			parts = parts[1:]
			continue
		}
		chunk := parts[:min(len(parts), maxIov)]
		var n int
		var werr error
		if err := rc.Write(func(fd uintptr) bool {
			n, werr = unix.Writev(int(fd), chunk)
			return true
		}); err != nil {
			return err
		}
		if errors.Is(werr, syscall.EINTR) {
			continue
		}
		if werr != nil {
			return werr
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		// Skip what was written; cut a part written in part.
		for n > 0 && len(parts) > 0 {
			if n >= len(parts[0]) {
				n -= len(parts[0])
				parts = parts[1:]
				continue
			}
			parts[0] = parts[0][n:]
			n = 0
		}
	}
	return nil
}
