package chaos

import (
	"fmt"
	"os/exec"
	"strings"
)

// Bandwidth limits use tc on lo: an htb root qdisc whose unclassified
// traffic (default 0) goes out unshaped, one htb class per direction of
// the link at the fault's rate, and u32 filters matching the two nodes'
// addresses. This kernel has htb and u32 but neither netem, prio nor
// flower; where htb or u32 is missing the fault is skipped with the
// reason tc gave (tcSupport), never silently.

// TCBatch renders the `tc -batch` lines that limit a bandwidth fault's
// link, both directions, to f.RateKbit each.
func TCBatch(f Fault) (string, error) {
	if f.Kind != FaultBandwidth {
		return "", fmt.Errorf("%w: %s is not a bandwidth fault", ErrSchedule, f.Kind)
	}
	if f.RateKbit < 8 || f.Node < 1 || f.Peer < 1 || f.Node == f.Peer {
		return "", fmt.Errorf("%w: bandwidth %d kbit/s between node %d and node %d", ErrSchedule, f.RateKbit, f.Node, f.Peer)
	}
	// r2q keeps htb's quantum sane for low rates; a 16 KiB burst lets a
	// 64 KiB loopback segment through by going into debt, as htb does.
	lines := []string{"qdisc add dev lo root handle 1: htb default 0 r2q 1"}
	for i, l := range []link{{f.Node, f.Peer}, {f.Peer, f.Node}} {
		class := 10 + i
		lines = append(lines,
			fmt.Sprintf("class add dev lo parent 1: classid 1:%d htb rate %dkbit ceil %dkbit burst 16k cburst 16k", class, f.RateKbit, f.RateKbit),
			fmt.Sprintf("filter add dev lo parent 1: protocol ip prio 1 u32 match ip src %s/32 match ip dst %s/32 flowid 1:%d", NodeIP(l.from), NodeIP(l.to), class))
	}
	return strings.Join(lines, "\n") + "\n", nil
}

// applyTC loads a batch with `tc -batch -`, inside the sandbox only.
func applyTC(batch string) error {
	if err := RequireSandbox(); err != nil {
		return err
	}
	cmd := exec.Command("tc", "-batch", "-")
	cmd.Stdin = strings.NewReader(batch)
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = healTC()
		return fmt.Errorf("chaos: tc: %v: %s", err, oneLine(out))
	}
	return nil
}

// healTC deletes lo's root qdisc (and with it every class and filter).
func healTC() error {
	if err := RequireSandbox(); err != nil {
		return err
	}
	if out, err := exec.Command("tc", "qdisc", "del", "dev", "lo", "root").CombinedOutput(); err != nil {
		return fmt.Errorf("chaos: tc qdisc del: %v: %s", err, oneLine(out))
	}
	return nil
}

// tcSupport says why bandwidth faults cannot run here, or "": it loads a
// limit between two unused node addresses (not a node of any run) and
// removes it. Inside the sandbox only.
func tcSupport() string {
	if _, err := exec.LookPath("tc"); err != nil {
		return "no tc (iproute2) installed"
	}
	batch, _ := TCBatch(Fault{Kind: FaultBandwidth, Node: 8, Peer: 9, RateKbit: 1000})
	if err := applyTC(batch); err != nil {
		return fmt.Sprintf("this kernel refuses an htb qdisc with u32 filters on lo (%v)", err)
	}
	if err := healTC(); err != nil {
		return err.Error()
	}
	return ""
}

// oneLine joins a command's output into one trimmed line.
func oneLine(b []byte) string {
	return strings.Join(strings.Fields(string(b)), " ")
}
