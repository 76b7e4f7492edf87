//go:build chaos

package main

// chaosHooksBuilt: this binary has the chaos hooks (delay and clock
// skew, internal/clock and internal/cluster/transport under -tags chaos).
const chaosHooksBuilt = true
