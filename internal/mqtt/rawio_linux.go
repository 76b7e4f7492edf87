package mqtt

import (
	"syscall"
	"unsafe"
)

// sysRead and sysWrite are read(2) and write(2) on a non-blocking socket
// without telling the scheduler (RawSyscall, not Syscall). They never
// block, so the scheduler has nothing to hand off; and a Syscall entered
// while every P is idle wakes the runtime's sysmon thread, which then
// polls every 20 µs for a millisecond or more. A fan-in of publishers
// whose messages arrive in bursts woke it on every burst: about a sixth
// of the broker's CPU (docs/performance.md, "CPU per delivered message
// against Mosquitto").
func sysRead(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(n), nil
	}
}

func sysWrite(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(n), nil
	}
}
