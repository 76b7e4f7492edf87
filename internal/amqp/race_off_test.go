//go:build !race

package amqp_test

// raceEnabled is true under the race detector, which slows the broker
// several times over: measured rates can then only be checked from above.
const raceEnabled = false
