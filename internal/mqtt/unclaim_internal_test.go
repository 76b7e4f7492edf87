package mqtt

import (
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/clock"
)

// A takeover that gives up waiting (handshake.go's 5 s) after the old
// connection's teardown already found the new one holding the client id
// must not put the old, finished, connection back in s.active: the
// session would count as resumed for good and never expire. The new
// connection ends or parks the session in the old one's place (review7
// F3). The teardown is run before unclaim, the order the race produces.
func TestUnclaimAfterTheOldTeardownDoesNotPinIt(t *testing.T) {
	for _, expiry := range []uint32{0, 60} {
		fake := clock.NewFake(time.Unix(1_000_000, 0))
		b := broker.New(broker.Config{Clock: fake})
		s, err := NewServer(Config{}, b, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		vh := b.VHost("/")
		q, err := vh.DeclareQueue(broker.QueueConfig{Name: sessionQueue("dev"), Durable: expiry > 0}, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		old := &conn{srv: s, clientID: "dev", queue: q, vhost: vh, expiry: expiry, graceful: true, noWill: true}
		if s.claim(old) != nil {
			t.Fatal("a first claim found a connection")
		}
		c := &conn{srv: s, clientID: "dev"}
		if s.claim(c) != old {
			t.Fatal("the takeover did not find the old connection")
		}
		old.teardown() // finds c holding the id: leaves the session alone
		s.unclaim(c, old)

		s.mu.Lock()
		pinned := s.active["dev"]
		s.mu.Unlock()
		if pinned != nil {
			t.Fatalf("expiry %d: a finished connection holds the client id after unclaim", expiry)
		}
		if expiry > 0 {
			// The countdown runs: past it, the session is gone.
			fake.Advance(time.Duration(expiry+1) * time.Second)
		}
		if q, _ := vh.Queue(sessionQueue("dev"), 0); q != nil {
			t.Fatalf("expiry %d: the session queue outlived its session", expiry)
		}
	}
}

// When the old connection has not reached its decision, unclaim hands the
// client id back to it, and its teardown ends the session as usual.
func TestUnclaimBeforeTheOldTeardownHandsTheIDBack(t *testing.T) {
	b := broker.New(broker.Config{})
	s, err := NewServer(Config{}, b, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	vh := b.VHost("/")
	q, err := vh.DeclareQueue(broker.QueueConfig{Name: sessionQueue("dev")}, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	old := &conn{srv: s, clientID: "dev", queue: q, vhost: vh, graceful: true, noWill: true}
	s.claim(old)
	c := &conn{srv: s, clientID: "dev"}
	s.claim(c)
	s.unclaim(c, old)
	s.mu.Lock()
	back := s.active["dev"] == old
	s.mu.Unlock()
	if !back {
		t.Fatal("the client id was not handed back to the connection still closing")
	}
	old.teardown()
	if q, _ := vh.Queue(sessionQueue("dev"), 0); q != nil {
		t.Fatal("the clean session's queue outlived its connection")
	}
}
