package chaos

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrNotSandboxed is returned by everything that starts nodes or injects
// faults when the network namespace has an interface besides lo: a rule
// or a listener there could touch a real network.
var ErrNotSandboxed = errors.New("chaos: refusing to run: this network namespace has interfaces besides lo (run inside `tern chaos run`, which makes its own)")

// SandboxEnv marks the re-executed runner inside the namespaces. It only
// says which half of the run this process is; safety comes from
// RequireSandbox, which looks at the interfaces themselves.
const SandboxEnv = "TERN_CHAOS_SANDBOX"

// RequireSandbox fails unless lo is the only network interface.
func RequireSandbox() error {
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("chaos: listing interfaces: %w", err)
	}
	return onlyLoopback(ifs)
}

func onlyLoopback(ifs []net.Interface) error {
	var other []string
	for _, i := range ifs {
		if i.Name != "lo" {
			other = append(other, i.Name)
		}
	}
	if len(other) > 0 {
		return fmt.Errorf("%w: %s", ErrNotSandboxed, strings.Join(other, ", "))
	}
	return nil
}

// SandboxCommand returns the command that re-executes this binary with
// args inside new network, mount and pid namespaces. --fork makes the
// runner pid 1 of its pid namespace, so when it exits (or crashes) the
// kernel kills every node it started; --kill-child kills the runner if
// unshare itself is killed; mounts made inside (the nodes' tmpfs) vanish
// with the mount namespace, which unshare makes private. Nothing is left
// behind after any exit.
func SandboxCommand(self string, args []string) *exec.Cmd {
	full := append([]string{"--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "--", self}, args...)
	cmd := exec.Command("unshare", full...)
	cmd.Env = append(os.Environ(), SandboxEnv+"=1")
	// If the tern that started unshare dies (kill -9 included), the kernel
	// kills unshare, and --kill-child then kills the runner: the pid
	// namespace's pid 1, whose end takes every node with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// SandboxPreflight says why a sandbox cannot be made here, or nil.
func SandboxPreflight() error {
	if os.Geteuid() != 0 {
		return errors.New("chaos: needs root (new network, mount and pid namespaces, mounts, nft)")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return errors.New("chaos: needs unshare (util-linux)")
	}
	return nil
}

// EnterSandbox runs in the re-executed runner: it checks that lo is all
// there is, then brings it up (a new network namespace starts with lo
// down), as `ip link set lo up` does, with the SIOCSIFFLAGS ioctl.
func EnterSandbox() error {
	if err := RequireSandbox(); err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("chaos: socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("chaos: lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("chaos: bringing lo up: %w", err)
	}
	return nil
}
