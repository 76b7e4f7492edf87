package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// span is how many ports below the ephemeral range are drawn from.
const span = 10000

var (
	mu     sync.Mutex
	handed = map[int]bool{}
)

// Loopback returns "127.0.0.1:port" for a port below the ephemeral range
// that nothing listened on when it was picked and that this process has not
// handed out before.
func Loopback(t testing.TB) string {
	t.Helper()
	low := ephemeralLow()
	first := max(low-span, 1024)
	mu.Lock()
	defer mu.Unlock()
	for range 200 {
		port := first + rand.IntN(low-first)
		if handed[port] {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		_ = ln.Close()
		handed[port] = true
		return fmt.Sprintf("127.0.0.1:%d", port)
	}
	t.Fatalf("freeport: no free loopback port in [%d, %d) after 200 tries", first, low)
	return ""
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default when the sysctl cannot be read).
func ephemeralLow() int {
	const linuxDefault = 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return linuxDefault
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return linuxDefault
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil || low <= 1024+100 {
		return linuxDefault
	}
	return low
}
