package mqtt

import (
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
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

// sysEpollWait is epoll_wait(2) that never waits (timeout 0), and
// sysEpollCtl epoll_ctl(2), both without telling the scheduler, for the
// same reason as sysRead: the event loop collects events and re-arms a
// socket on every burst of publishes, and a Syscall there woke sysmon as
// a read did (3–5 % of the broker's CPU in a fan-in, in its nanosleeps).
// epoll_pwait with no signal mask is epoll_wait, and exists on every
// architecture (arm64 has no epoll_wait).
func sysEpollWait(epfd int, events []unix.EpollEvent) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(n), nil
	}
}

func sysEpollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	for {
		_, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}

// sysNanosleep sleeps d without telling the scheduler: the event loop's
// gathering window (gather_linux.go). A Syscall would wake sysmon when
// every other P is idle, as above, and a timer (time.Sleep) readies the
// goroutine through the scheduler, which wakes another thread to look for
// work; a raw sleep just returns. A signal (the runtime's preemption)
// ends it early, which only shortens the window.
func sysNanosleep(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	_, _, _ = syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
}
