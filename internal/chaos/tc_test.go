package chaos

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestTCBatchLimitsBothDirectionsOfOneLink(t *testing.T) {
	got, err := TCBatch(Fault{Kind: FaultBandwidth, Node: 3, Peer: 1, RateKbit: 256})
	if err != nil {
		t.Fatal(err)
	}
	want := "qdisc add dev lo root handle 1: htb default 0 r2q 1\n" +
		"class add dev lo parent 1: classid 1:10 htb rate 256kbit ceil 256kbit burst 16k cburst 16k\n" +
		"filter add dev lo parent 1: protocol ip prio 1 u32 match ip src 127.0.0.13/32 match ip dst 127.0.0.11/32 flowid 1:10\n" +
		"class add dev lo parent 1: classid 1:11 htb rate 256kbit ceil 256kbit burst 16k cburst 16k\n" +
		"filter add dev lo parent 1: protocol ip prio 1 u32 match ip src 127.0.0.11/32 match ip dst 127.0.0.13/32 flowid 1:11\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	for _, f := range []Fault{
		{Kind: FaultLoss, Node: 1, Peer: 2, RateKbit: 100},
		{Kind: FaultBandwidth, Node: 1, Peer: 1, RateKbit: 100},
		{Kind: FaultBandwidth, Node: 1, Peer: 2, RateKbit: 0},
	} {
		if _, err := TCBatch(f); !errors.Is(err, ErrSchedule) {
			t.Errorf("%+v: %v, want ErrSchedule", f, err)
		}
	}
}

// tcInsideEnv marks the re-executed test inside its own network namespace.
const tcInsideEnv = "TERN_CHAOS_TC_TEST_INSIDE"

// TestBandwidthShapesOnlyItsLink runs itself again under `unshare --net`
// (a namespace whose only interface is lo): there it loads a 400 kbit/s
// limit between node 1 and node 2 and measures a TCP transfer from node
// 1's address and from a client's: the first is held near the rate, the
// second is not, and after healTC neither is. It skips, saying why, where
// it cannot make the namespace or the kernel lacks htb/u32.
func TestBandwidthShapesOnlyItsLink(t *testing.T) {
	if os.Getenv(tcInsideEnv) == "1" {
		bandwidthInside(t)
		return
	}
	if err := SandboxPreflight(); err != nil {
		t.Skip(err)
	}
	if _, err := exec.LookPath("tc"); err != nil {
		t.Skip("needs tc (iproute2)")
	}
	cmd := exec.Command("unshare", "--net", "--fork", "--kill-child", os.Args[0], "-test.run=^TestBandwidthShapesOnlyItsLink$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), tcInsideEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("inside the namespace:\n%s", out)
	if err != nil {
		if strings.Contains(string(out), "--- SKIP") || strings.Contains(string(out), "unshare failed") {
			t.Skipf("cannot run inside a network namespace: %v", err)
		}
		t.Fatal(err)
	}
	if strings.Contains(string(out), "--- SKIP") {
		t.Skip("skipped inside the namespace (see the log)")
	}
}

func bandwidthInside(t *testing.T) {
	if err := EnterSandbox(); err != nil {
		t.Fatal(err)
	}
	if why := tcSupport(); why != "" {
		t.Skip(why)
	}
	const kbit = 400
	batch, err := TCBatch(Fault{Kind: FaultBandwidth, Node: 1, Peer: 2, RateKbit: kbit})
	if err != nil {
		t.Fatal(err)
	}
	if err := applyTC(batch); err != nil {
		t.Fatal(err)
	}
	limit := float64(kbit) * 1000 / 8 // bytes per second
	shaped := transferRate(t, NodeIP(1), NodeIP(2))
	free := transferRate(t, ClientIP(0), NodeIP(2))
	t.Logf("limit %.0f B/s: node 1 to node 2 %.0f B/s, client to node 2 %.0f B/s", limit, shaped, free)
	// htb lets one 64 KiB loopback segment through on credit and then
	// holds the rate: over a second, at most half again the rate plus
	// two segments, whatever the machine's load (load only slows it).
	if shaped > 1.5*limit+128<<10 {
		t.Errorf("the limited link carried %.0f B/s, limit %.0f", shaped, limit)
	}
	if free < 20*limit {
		t.Errorf("a client's link carried only %.0f B/s: the limit leaked past its address pair", free)
	}
	if err := healTC(); err != nil {
		t.Fatal(err)
	}
	if healed := transferRate(t, NodeIP(1), NodeIP(2)); healed < 20*limit {
		t.Errorf("after the heal node 1 to node 2 carried only %.0f B/s", healed)
	}
}

// transferRate sends from src to dst for about a second and returns the
// bytes per second the receiver got within that second.
func transferRate(t *testing.T, src, dst string) float64 {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(dst, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var got atomic.Int64
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			got.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const window = time.Second
	start := time.Now()
	buf := make([]byte, 16<<10)
	for time.Since(start) < window {
		c.SetWriteDeadline(start.Add(window))
		if _, err := c.Write(buf); err != nil {
			break
		}
	}
	rate := float64(got.Load()) / time.Since(start).Seconds()
	if rc, ok := <-accepted; ok {
		rc.Close() // the sender's queued bytes die with the sockets
	}
	return rate
}
