package mqtt

import (
	"testing"

	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// review10 F1/F2: the event loop must not wait on a queue log (its lock
// is held across write and fsync by the committer). A publisher whose
// messages reached a durable queue's log, and a persistent session's
// PUBACKs (they settle logged messages), are served by runners; a clean
// session's QoS 1 publishes and PUBACKs stay on the loop.
func TestEventLoopLeavesDiskBoundPacketsToRunners(t *testing.T) {
	s := serveTest(t, newTestBroker(nil), "", Config{})
	qos1 := byte(wire.PUBLISH<<4 | 1<<1)
	puback := byte(wire.PUBACK << 4)

	clean := &conn{srv: s.Server}
	if clean.inlineStop(qos1, nil) || clean.inlineStop(puback, []byte{0, 1}) {
		t.Fatal("a clean session's QoS 1 publish or PUBACK left the event loop")
	}
	toDisk := &conn{srv: s.Server, routesToDisk: true}
	if !toDisk.inlineStop(qos1, nil) || !toDisk.inlineStop(byte(wire.PUBLISH<<4), nil) {
		t.Fatal("a publisher whose messages reach a queue log stayed on the event loop")
	}
	persistent := &conn{srv: s.Server, persistent: true}
	if !persistent.inlineStop(puback, []byte{0, 1}) {
		t.Fatal("a persistent session's PUBACK stayed on the event loop")
	}
}
