package amqp_test

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/testkit"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// amqplib writes connection.close ahead of publishes it still has buffered.
// Tern must answer close-ok and keep reading (and discarding) until the
// client closes: closing a socket with unread input resets the connection,
// and the reset destroys the close-ok before the client reads it.
func TestConnectionCloseWithFramesInFlightDoesNotReset(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	r := s.DialRaw(t)
	r.Handshake(0)
	var burst []byte
	for range 64 {
		burst = appendPublish(burst, 1, "", "nowhere", bytes.Repeat([]byte("x"), 1000), false)
	}
	buf := amqp091.AppendMethodFrame(nil, 0, &amqp091.ConnectionClose{ReplyCode: 200, ReplyText: "bye"})
	r.Write(append(buf, burst...))
	if m := r.Expect(); m.Name() != (&amqp091.ConnectionCloseOk{}).Name() {
		t.Fatalf("got %s, want connection.close-ok", m.Name())
	}
	// The client's remaining buffered frames follow; none may be refused,
	// and the socket stays open (no EOF, no reset) until the client closes.
	for i := range 10 {
		if _, err := r.NC.Write(burst); err != nil {
			t.Fatalf("write %d after close-ok: %v", i, err)
		}
	}
	_ = r.NC.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := r.NC.Read(make([]byte, 64)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("after close-ok Tern closed or reset the socket before the client: %v", err)
	}
	if s.AMQPStats().ConnectionsOpen != 1 {
		t.Fatal("Tern gave up the connection before the client closed it")
	}
	_ = r.NC.Close()
	testkit.Eventually(t, wait, "the connection to end once the client closed", func() bool {
		return s.AMQPStats().ConnectionsOpen == 0
	})
}
