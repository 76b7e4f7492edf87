package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The delay and clock-skew faults need hooks inside the broker (this
// kernel has no netem): a node binary built with -tags chaos reads its
// TERN_CHAOS_CONTROL directory every 20 ms — delay_ms for the cluster
// transport's per-peer send delay (internal/cluster/transport,
// delay_chaos.go), clock_offset_ms for the broker clock's offset
// (internal/clock, skew_chaos.go) — and logs each change to its node.log.
// Without the tag the hooks are not compiled in.

// ControlEnv names a node's control directory (clock.ControlEnv).
const ControlEnv = "TERN_CHAOS_CONTROL"

// HooksHint says how to get a binary with the hooks.
const HooksHint = "build one with `go build -tags chaos -o tern-chaos ./cmd/tern` and run `tern-chaos chaos run ...` (or pass --bin)"

// skipReasons says, per fault kind the schedule uses, why it cannot be
// injected here: bandwidth where tc or the kernel's htb/u32 is missing,
// delay and clock-skew where the nodes' binary lacks the chaos hooks.
func skipReasons(s Schedule, hooks bool) map[string]string {
	out := map[string]string{}
	for _, f := range s.Faults {
		if _, done := out[f.Kind]; done {
			continue
		}
		switch {
		case f.Kind == FaultBandwidth:
			if why := tcSupport(); why != "" {
				out[f.Kind] = why
			}
		case slices.Contains(hookFaults, f.Kind) && !hooks:
			out[f.Kind] = "the nodes' tern was built without -tags chaos: " + HooksHint
		}
	}
	for k, v := range out {
		if v == "" {
			delete(out, k)
		}
	}
	return out
}

// setDelay makes from's cluster frames to to wait ms (0: none).
func setDelay(from, to *Node, ms int) error {
	body := ""
	if ms > 0 {
		body = fmt.Sprintf("%s %d\n", NodeIP(to.ID), ms)
	}
	return writeControl(from, "delay_ms", body)
}

// setSkew sets n's broker clock offset (0: none).
func setSkew(n *Node, ms int64) error {
	return writeControl(n, "clock_offset_ms", fmt.Sprintf("%d\n", ms))
}

// writeControl replaces a control file whole (rename), so a hook never
// reads half of one.
func writeControl(n *Node, name, body string) error {
	if err := RequireSandbox(); err != nil {
		return err
	}
	if n.Control == "" {
		return fmt.Errorf("chaos: node %d has no control directory", n.ID)
	}
	tmp := filepath.Join(n.Control, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(n.Control, name)); err != nil {
		return fmt.Errorf("chaos: %s: %w", strings.TrimPrefix(tmp, n.Dir), err)
	}
	return nil
}
