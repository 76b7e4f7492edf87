//go:build !chaos

package main

// chaosHooksBuilt: this binary has no chaos hooks (built without -tags
// chaos), so `tern chaos run` skips delay and clock-skew faults, saying so.
const chaosHooksBuilt = false
