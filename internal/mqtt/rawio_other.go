//go:build !linux

package mqtt

import "syscall"

// Off Linux no connection is polled (poller_other.go), so these are never
// reached; they keep io.go portable.
func sysRead(fd int, b []byte) (int, error) {
	for {
		n, err := syscall.Read(fd, b)
		if err != syscall.EINTR {
			return max(n, 0), err
		}
	}
}

func sysWrite(fd int, b []byte) (int, error) {
	for {
		n, err := syscall.Write(fd, b)
		if err != syscall.EINTR {
			return max(n, 0), err
		}
	}
}

// sockNow: no sockConn off Linux.
func sockNow(syscall.RawConn, []byte, bool) (int, error, bool) { return 0, nil, false }
