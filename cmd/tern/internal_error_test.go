package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// A failure inside the broker (here: the definitions and the queue log
// cannot be written to a full disk) reaches the client as a reply that says
// what failed, without the Go error behind it: no file path, no "store:" or
// syscall text. The detail is in the server's log.
func TestInternalErrorTextNeverReachesTheClient(t *testing.T) {
	fs := mountSmallFS(t, "8m")
	data := filepath.Join(fs, "data")
	s := startLogged(t, data, "TERN_DISK_FREE_LIMIT=0")
	conn, ch := dialChannel(t, s.url())
	defer conn.Close()
	fillUp(t, filepath.Join(fs, "filler"))

	// The definitions log is preallocated, so the first declares after
	// the disk fills still land in room the log already holds (how much
	// depends on what the start wrote: seeded users, permissions). Declare
	// until the log needs room the disk no longer has.
	var err error
	deadline := time.Now().Add(time.Minute)
	for i := 0; err == nil && i < 50000 && time.Now().Before(deadline); i++ {
		_, err = ch.QueueDeclare(fmt.Sprintf("durable-on-a-full-disk-%d", i), true, false, false, false, nil)
	}
	var ae *amqp.Error
	if !errors.As(err, &ae) {
		t.Fatalf("declaring durable queues on a full disk: want an AMQP error, got %v", err)
	}
	t.Logf("client sees: %d %s", ae.Code, ae.Reason)
	for _, leak := range []string{fs, "store:", "broker:", "no space", "device", ".json", "open ", "write "} {
		if strings.Contains(ae.Reason, leak) {
			t.Errorf("reply text %q contains the internal %q", ae.Reason, leak)
		}
	}
	if ae.Code != amqp.ResourceError && ae.Code != amqp.InternalError {
		t.Errorf("reply code %d, want 506 RESOURCE_ERROR or 541 INTERNAL_ERROR", ae.Code)
	}
	// The operator still learns what failed. The server logs it before
	// it replies, but this test reads the server's stderr on another
	// goroutine: wait (bounded) for that reader to get there.
	deadline = time.Now().Add(10 * time.Second)
	for len(s.linesWith("no space left on device")) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(s.linesWith("no space left on device")); n == 0 {
		t.Errorf("the cause is not in the server log:\n%s", strings.Join(noisyLines(s), "\n"))
	}
}
