package amqp

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// A refusal the client got with its own text (a 404 while a queue's node
// is down) is logged as a warning; only a 541, whose client learns
// nothing, is an ERROR saying so.
func TestLogCauseLevel(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	c := &connection{log: slog.New(slog.NewTextHandler(&buf, nil))}
	c.logCause(&amqpError{code: amqp091.NotFound, text: "NOT_FOUND - home node n2 of queue 'q' in vhost '/' is down or inaccessible",
		cause: errors.New("unreachable")})
	if out := buf.String(); !strings.Contains(out, "level=WARN") || strings.Contains(out, "generic reply") {
		t.Fatalf("404 with its text logged as %q", out)
	}
	buf.Reset()
	c.logCause(internalError(errors.New("disk on fire"), nil))
	if out := buf.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "generic reply") {
		t.Fatalf("541 logged as %q", out)
	}
	buf.Reset()
	c.logCause(&amqpError{code: amqp091.NotFound, text: "NOT_FOUND - no queue"})
	if buf.Len() != 0 {
		t.Fatalf("an error without a cause logged %q", buf.String())
	}
}
