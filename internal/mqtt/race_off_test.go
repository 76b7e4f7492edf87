//go:build !race

package mqtt

// raceEnabled is true under the race detector, which slows the broker
// several times over: timing-made behaviour (the event loop's gathering)
// may not happen.
const raceEnabled = false
