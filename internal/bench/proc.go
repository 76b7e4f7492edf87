package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// processRSS reads a process's resident set size in bytes from /proc.
func processRSS(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: reading the server's memory: %w", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("bench: no VmRSS for pid %d", pid)
}

// clockTick is the unit of /proc/PID/stat's CPU times (USER_HZ, 100 on
// Linux).
const clockTick = 10 * time.Millisecond

// processCPU reads the CPU time (user + system) a process has used.
func processCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: reading the server's CPU time: %w", err)
	}
	// The command name (field 2) may hold spaces; the fields after its
	// closing parenthesis are fixed: utime and stime are the 12th and 13th.
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: bad /proc/%d/stat", pid)
	}
	return time.Duration(ut+st) * clockTick, nil
}

// openFileLimit reads a process's soft limit on open files from
// /proc/PID/limits (-1: unlimited).
func openFileLimit(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "Max open files") {
			continue
		}
		f := strings.Fields(strings.TrimPrefix(line, "Max open files"))
		if len(f) < 1 {
			break
		}
		if f[0] == "unlimited" {
			return -1, nil
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	return 0, fmt.Errorf("bench: no open-file limit for pid %d", pid)
}

// raiseOpenFileLimit lifts this process's soft open-file limit to its hard
// limit (Go does this at start-up too) and returns the limit in force.
func raiseOpenFileLimit() int {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 1024
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
	}
	return int(min(l.Cur, 1<<30))
}

// collectGarbage asks a Tern broker to collect garbage and return freed
// memory to the OS (SIGUSR1), then waits for its resident set to settle:
// at least a second (the broker's signal handler may wait for a core on a
// loaded machine), then three readings 100 ms apart within 16 KiB of each
// other, at most 10 s.
func collectGarbage(pid int) (int64, error) {
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		return 0, fmt.Errorf("bench: signalling the server: %w", err)
	}
	var last int64
	stable := 0
	earliest := time.Now().Add(time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		rss, err := processRSS(pid)
		if err != nil {
			return 0, err
		}
		if d := rss - last; d > -16<<10 && d < 16<<10 {
			stable++
		} else {
			stable = 0
		}
		last = rss
		if stable >= 3 && time.Now().After(earliest) {
			break
		}
	}
	return last, nil
}
