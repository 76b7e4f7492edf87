package store

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/vfs"
)

// lineHandler sends every log message to a channel, so a test waits for a
// line as an event.
type lineHandler struct{ lines chan string }

func (h lineHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h lineHandler) Handle(_ context.Context, r slog.Record) error {
	h.lines <- r.Message
	return nil
}
func (h lineHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h lineHandler) WithGroup(string) slog.Handler      { return h }

// waitLine waits for the next log line containing want, skipping others.
func waitLine(t *testing.T, lines chan string, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l := <-lines:
			if strings.Contains(l, want) {
				return
			}
		case <-deadline:
			t.Fatalf("no log line %q", want)
		}
	}
}

// TestEveryEpisodeOfFailingWritesIsLogged: the store logs when writes
// start failing and when they work again, once per episode. The end of an
// episode is logged even when only a few writes follow it, and a second
// episode is logged again. (The end was once decided by a later write, so
// a short burst after space returned logged nothing, and neither did the
// next episode.)
func TestEveryEpisodeOfFailingWritesIsLogged(t *testing.T) {
	t.Parallel()
	faults := newBlockingFaults()
	lines := make(chan string, 1000)
	st, err := Open(vfs.NewFaulty(vfs.NewMem(), faults.inject), "/data", Options{
		SegmentSize: 1 << 20, WriteRecovery: 20 * time.Millisecond, Logger: slog.New(lineHandler{lines}),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	l, err := st.QueueLog("q")
	if err != nil {
		t.Fatal(err)
	}
	r := newResults()
	seq := uint64(0)
	appendOne := func() {
		seq++
		_ = l.Append(seq, msg(seq), r, seq) // a failure is what the test is after
	}
	for episode := 1; episode <= 2; episode++ {
		faults.set("q", "")
		for i := 0; i < 50; i++ {
			appendOne()
		}
		waitLine(t, lines, "writes to the data directory are failing")
		faults.set("", "")
		appendOne() // one good write, then nothing
		waitLine(t, lines, "writes to the data directory succeed again")
	}
	for {
		select {
		case l := <-lines:
			if strings.Contains(l, "are failing") {
				t.Errorf("a 'failing' line more than the two episodes: %q", l)
			}
		default:
			return
		}
	}
}
