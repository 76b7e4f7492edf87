package broker

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// takeEffects describes and clears the machine's pending effects (the
// deliveries and dead letters its last Apply produced).
func takeEffects(m *quorumMachine) string {
	var b bytes.Buffer
	for _, d := range m.deliveries {
		fmt.Fprintf(&b, "d%d/%x/%d/%v/%d/%d/%d;", d.node, d.key, d.id, d.redelivered, d.count, d.acquired, d.remaining)
	}
	for _, d := range m.dead {
		fmt.Fprintf(&b, "x%q/%s;", recBody(d.rec), d.reason)
	}
	m.deliveries, m.dead = nil, nil
	return b.String()
}

// A replica re-restored from its own snapshot every few entries behaves
// exactly like one that applied every entry: same results, same effects
// after every entry (deliveries, dead letters), same snapshot. Config
// entries are in the mix (a policy change mid-run). Snapshot/Restore must
// capture the whole state; anything it missed shows up as a different
// effect later.
func TestQuorumMachineRestoredReplicaHasSameEffects(t *testing.T) {
	iters := 250
	if testing.Short() {
		iters = 100
	}
	rng := rand.New(rand.NewPCG(5, 5))
	for iter := range iters {
		data := make([]byte, 50+rng.IntN(1500))
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		cfg := qgenConfig(data[0])
		g := &qgen{b: data[2:], ts: 1_000_000_000}
		a, c := newQuorumMachine(cfg), newQuorumMachine(cfg)
		every := 1 + int(data[1]%7)
		for i := 1; i <= 400; i++ {
			var e []byte
			if rng.IntN(12) == 0 {
				e = (&qcmd{kind: qcConfig, node: 1, ts: g.ts, conf: qgenConfig(byte(rng.Uint32()))}).encode(nil)
			} else {
				e = g.cmd()
			}
			if e == nil {
				break
			}
			if i%every == 0 {
				n := newQuorumMachine(cfg)
				if err := n.Restore(snap(t, c)); err != nil {
					t.Fatal(err)
				}
				c = n
			}
			ra, rc := a.Apply(uint64(i), e), c.Apply(uint64(i), e)
			if describe(ra) != describe(rc) {
				t.Fatalf("iter %d entry %d: results %v and %v", iter, i, ra, rc)
			}
			if ea, ec := takeEffects(a), takeEffects(c); ea != ec {
				t.Fatalf("iter %d entry %d kind %d: effects differ\n live:     %s\n restored: %s", iter, i, e[0], ea, ec)
			}
			if !bytes.Equal(snap(t, a), snap(t, c)) {
				t.Fatalf("iter %d entry %d kind %d: snapshots differ", iter, i, e[0])
			}
		}
	}
}
