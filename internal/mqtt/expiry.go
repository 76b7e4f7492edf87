package mqtt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/vfs"
)

// neverExpires is the 5.0 Session Expiry Interval meaning "never".
const neverExpires = 0xFFFFFFFF

// sessionExpiry ends persistent 5.0 sessions whose expiry interval passed
// after their client went away [MQTT-3.1.2-23]. The interval is the one the
// client last gave — on CONNECT, or on DISCONNECT (§3.14.2.2.2) — so it
// cannot live in the session queue's x-expires, which is fixed when the
// queue is declared. Each session's interval and the time its client left
// are kept in memory and in one file rewritten atomically on change
// (connects and disconnects of persistent 5.0 sessions only, never per
// message), so expiry survives restarts: a session whose client was still
// connected when the broker stopped counts from the restart.
type sessionExpiry struct {
	clock clock.Clock // times the countdowns
	fs    vfs.FS
	path  string // "" keeps them in memory only
	vhost func() *broker.VHost
	// resumed reports whether a client id has a live connection, which
	// keeps its session alive whatever the timer says.
	resumed func(clientID string) bool
	// ended, if set, is told of a session the countdown ended.
	ended func(clientID string)

	mu      sync.Mutex
	entries map[string]expiryEntry
	timers  map[string]clock.Timer
	stopped bool
}

type expiryEntry struct {
	interval uint32 // seconds
	left     int64  // UnixNano the client went away; 0 while connected
}

func newSessionExpiry(fsys vfs.FS, path string, clk clock.Clock) (*sessionExpiry, error) {
	e := &sessionExpiry{clock: clock.Or(clk), fs: fsys, path: path, entries: map[string]expiryEntry{}, timers: map[string]clock.Timer{}}
	if path == "" {
		return e, nil
	}
	raw, err := vfs.ReadFile(fsys, path)
	if errors.Is(err, vfs.ErrNotExist) {
		return e, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mqtt: session expiry: %w", err)
	}
	// Format: repeated (client id len u16, client id, interval u32, left
	// int64 UnixNano).
	for len(raw) > 0 {
		id, rest, ok := cut16(raw)
		if !ok || len(rest) < 12 {
			return nil, fmt.Errorf("mqtt: session expiry file is corrupt")
		}
		e.entries[string(id)] = expiryEntry{interval: binary.BigEndian.Uint32(rest), left: int64(binary.BigEndian.Uint64(rest[4:]))}
		raw = rest[12:]
	}
	return e, nil
}

// start arms a timer for every session loaded from disk.
func (e *sessionExpiry) start(vhost func() *broker.VHost, resumed func(string) bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.vhost, e.resumed = vhost, resumed
	now := e.clock.Now().UnixNano()
	for id, en := range e.entries {
		if en.left == 0 {
			en.left = now // connected when the broker stopped
			e.entries[id] = en
		}
		e.armLocked(id, en)
	}
}

// connected records that a client's session is in use with interval; a
// session that is not persistent (interval 0) has no entry.
func (e *sessionExpiry) connected(clientID string, interval uint32) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.disarmLocked(clientID)
	if interval == 0 || interval == neverExpires {
		if _, had := e.entries[clientID]; !had {
			return nil
		}
		delete(e.entries, clientID)
	} else {
		e.entries[clientID] = expiryEntry{interval: interval}
	}
	return e.saveLocked()
}

// left starts the countdown of a persistent session whose client went away.
func (e *sessionExpiry) left(clientID string, interval uint32) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if interval == 0 || interval == neverExpires {
		if _, had := e.entries[clientID]; !had {
			return nil
		}
		delete(e.entries, clientID)
		return e.saveLocked()
	}
	en := expiryEntry{interval: interval, left: e.clock.Now().UnixNano()}
	e.entries[clientID] = en
	e.armLocked(clientID, en)
	return e.saveLocked()
}

// forget drops a session's entry (the session was deleted).
func (e *sessionExpiry) forget(clientID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.disarmLocked(clientID)
	if _, had := e.entries[clientID]; had {
		delete(e.entries, clientID)
		_ = e.saveLocked()
	}
}

func (e *sessionExpiry) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stopped = true
	for id := range e.timers {
		e.disarmLocked(id)
	}
}

func (e *sessionExpiry) disarmLocked(clientID string) {
	if t := e.timers[clientID]; t != nil {
		t.Stop()
		delete(e.timers, clientID)
	}
}

func (e *sessionExpiry) armLocked(clientID string, en expiryEntry) {
	e.disarmLocked(clientID)
	if e.stopped || e.vhost == nil {
		return
	}
	at := time.Unix(0, en.left).Add(time.Duration(en.interval) * time.Second)
	var t clock.Timer
	t = e.clock.AfterFunc(at.Sub(e.clock.Now()), func() {
		e.mu.Lock()
		if e.timers[clientID] != t || e.resumed(clientID) {
			e.mu.Unlock()
			return // resumed or re-armed meanwhile
		}
		defer e.mu.Unlock()
		delete(e.timers, clientID)
		delete(e.entries, clientID)
		_ = e.saveLocked()
		// Deleted under e.mu: a client resuming now waits in connected
		// and then finds no session, rather than half of one.
		if vh := e.vhost(); vh != nil {
			_, _ = vh.DeleteQueue(sessionQueue(clientID), false, false, 0)
		}
		if e.ended != nil {
			e.ended(clientID) // its QoS 2 state goes with it
		}
	})
	e.timers[clientID] = t
}

func (e *sessionExpiry) saveLocked() error {
	if e.path == "" {
		return nil
	}
	ids := make([]string, 0, len(e.entries))
	for id := range e.entries {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []byte
	for _, id := range ids {
		en := e.entries[id]
		out = binary.BigEndian.AppendUint16(out, uint16(len(id)))
		out = append(out, id...)
		out = binary.BigEndian.AppendUint32(out, en.interval)
		out = binary.BigEndian.AppendUint64(out, uint64(en.left))
	}
	if err := vfs.WriteFileAtomic(e.fs, e.path, out); err != nil {
		return fmt.Errorf("mqtt: saving session expiry: %w", err)
	}
	return nil
}
