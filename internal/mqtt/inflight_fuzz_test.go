package mqtt

import (
	"testing"

	"github.com/tern-broker/tern/internal/message"
)

// FuzzSessionRecordKey: a session log key of arbitrary bytes never panics
// the decoder, and a key it accepts encodes back to itself, so recovery
// never mistakes one client's or one kind's record for another's.
func FuzzSessionRecordKey(f *testing.F) {
	f.Add(outKey("dev-1", 0))
	f.Add(outKey("dev\x001", 1<<40|7))
	f.Add(inKey("a", 1))
	f.Add(inKey("", 65535))
	f.Add(barrierKey("x"))
	f.Add("\x00o\x00\x00")
	f.Add("")
	f.Fuzz(func(t *testing.T, key string) {
		id, kind, n, ok := parseSessionKey(key)
		if !ok {
			return
		}
		var again string
		switch kind {
		case keyOut:
			again = outKey(id, n)
		case keyIn:
			if n == 0 || n > 65535 {
				t.Fatalf("inbound packet id %d accepted", n)
			}
			again = inKey(id, uint16(n))
		case keyBarrier:
			again = barrierKey(id)
		default:
			t.Fatalf("kind %q accepted", kind)
		}
		if again != key {
			t.Fatalf("%q decodes to (%q, %c, %d), which encodes to %q", key, id, kind, n, again)
		}
		// Loading it never panics either.
		s := newSessions(nil, []RetainedRecord{{Key: key, Msg: &message.Message{Body: []byte("q")}}})
		if kind != keyBarrier && s.m[id] == nil {
			t.Fatalf("record %q loaded no state", key)
		}
	})
}
