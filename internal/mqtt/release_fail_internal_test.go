package mqtt

import (
	"errors"
	"testing"

	"github.com/tern-broker/tern/internal/message"
)

// failingSessionLog fails every Put: at once (put) or at its commit.
type failingSessionLog struct{ atOnce bool }

func (f failingSessionLog) Put(_ string, _ *message.Message, done message.Completion, token uint64) error {
	if f.atOnce {
		return errors.New("log closed")
	}
	done.Durable(token, errors.New("disk full"))
	return nil
}

func (failingSessionLog) Remove(string) {}

// A PUBREC whose record cannot be written is not kept: the caller learns
// the error (and sends no PUBREL), and the session does not take the
// message for released (its PUBLISH goes again, never a PUBREL without a
// durable record behind it).
func TestSessionPUBRECRecordFailureForgetsTheRelease(t *testing.T) {
	for _, atOnce := range []bool{false, true} {
		s := newSessions(failingSessionLog{atOnce: atOnce}, nil)
		st := s.attach("dev", "q1", 1)
		var got error
		calls := 0
		s.release("dev", st, 1, "q1", 7, 100, completionFunc(func(_ uint64, err error) { got = err; calls++ }), 0)
		if got == nil || calls != 1 {
			t.Fatalf("atOnce=%v: want one failed completion, got %d, err %v", atOnce, calls, got)
		}
		if st.isReleased("q1", 7, 100) || len(st.releasedSeqs()) != 0 {
			t.Fatalf("atOnce=%v: an unrecorded PUBREC kept as released", atOnce)
		}
	}
}
