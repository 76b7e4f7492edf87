package main

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// A transaction whose persistent message cannot be stored is never
// committed: the client gets 541 INTERNAL_ERROR instead of tx.commit-ok, as
// a publisher in confirm mode gets a nack. (Before, the failure was logged
// and commit-ok went out for a message that was not on disk.)
func TestTxCommitOnAFullDiskIsNeverCommitOk(t *testing.T) {
	fs := mountSmallFS(t, "8m")
	s := startLogged(t, filepath.Join(fs, "data"), "TERN_DISK_FREE_LIMIT=0")
	conn, ch := dialChannel(t, s.url())
	defer conn.Close()
	if _, err := ch.QueueDeclare("tx-on-a-full-disk", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	// A commit that fits on the disk is committed.
	if err := ch.Tx(); err != nil {
		t.Fatal(err)
	}
	publish := func() {
		t.Helper()
		if err := ch.Publish("", "tx-on-a-full-disk", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: make([]byte, 4096)}); err != nil {
			t.Fatal(err)
		}
	}
	publish()
	if err := ch.TxCommit(); err != nil {
		t.Fatalf("committing with room on the disk: %v", err)
	}
	fillUp(t, filepath.Join(fs, "filler"))
	publish()
	err := ch.TxCommit()
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.InternalError {
		t.Fatalf("committing a message the disk cannot take: want 541 INTERNAL_ERROR, got %v", err)
	}
	// The log reaches the test through a pipe: wait for the connection's
	// last line, which the server writes after the failure's.
	for deadline := time.Now().Add(10 * time.Second); s.count("connection closed") == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the server never logged the connection's close")
		}
	}
	if n := s.count("persisting a transactional message failed"); n != 1 {
		t.Errorf("%d log lines for the failed commit, want 1", n)
	}
}
