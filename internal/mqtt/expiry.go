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
	// info, if set, logs a line (rate-limited by the server); called
	// with mu held.
	info func(msg string, args ...any)

	mu      sync.Mutex
	entries map[string]expiryEntry
	timers  map[string]clock.Timer
	stopped bool

	// The file is written by group commit (persistLocked): each change
	// bumps version; one caller at a time writes the whole state and
	// every change made meanwhile rides on the next write, so a connect
	// storm of 5.0 sessions with an expiry costs a few rewrites a
	// second, not one (and an fsync) per connect under mu.
	cond        sync.Cond // L is &mu; signalled when a write ends
	version     uint64    // changes made
	written     uint64    // changes covered by the last write
	writing     bool
	okThrough   uint64 // changes covered by the last successful write
	lastFailure error  // the last write's error, if it failed
}

type expiryEntry struct {
	interval uint32 // seconds
	left     int64  // UnixNano the client went away; 0 while connected
}

func newSessionExpiry(fsys vfs.FS, path string, clk clock.Clock) (*sessionExpiry, error) {
	e := &sessionExpiry{clock: clock.Or(clk), fs: fsys, path: path, entries: map[string]expiryEntry{}, timers: map[string]clock.Timer{}}
	e.cond.L = &e.mu
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
	return e.persistLocked()
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
		return e.persistLocked()
	}
	en := expiryEntry{interval: interval, left: e.clock.Now().UnixNano()}
	e.entries[clientID] = en
	e.armLocked(clientID, en)
	return e.persistLocked()
}

// forget drops a session's entry (the session was deleted).
func (e *sessionExpiry) forget(clientID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.disarmLocked(clientID)
	if _, had := e.entries[clientID]; had {
		delete(e.entries, clientID)
		_ = e.persistLocked()
	}
}

// moved drops a session's countdown without deleting anything: the
// client connected on another node of the cluster (TakenOver), which
// keeps the clock from its CONNECT on and arms it when the client leaves
// there. This node's clock, armed when the client left it (or, for an
// entry still marked connected, at its next restart), would otherwise end
// the session under its live connection elsewhere. The file is written
// on another goroutine: TakenOver runs on the cluster transport's, and
// each write covers the whole state as it is then, so a later write
// carries this change however the two interleave.
func (e *sessionExpiry) moved(clientID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.disarmLocked(clientID)
	if _, had := e.entries[clientID]; !had {
		return
	}
	delete(e.entries, clientID)
	if e.path == "" {
		return
	}
	go func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if err := e.persistLocked(); err != nil && e.info != nil {
			e.info("recording the session expiry failed", "err", err)
		}
	}()
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
		vh := e.vhost()
		if vh != nil {
			if q, err := vh.Queue(sessionQueue(clientID), 0); err == nil && q.ConsumerCount() > 0 {
				// Someone consumes the session queue: in a cluster, the
				// client resumed the session on another node (which
				// consumes it from there) and this node missed the
				// takeover that drops its clock (moved). That node keeps
				// the clock now; deleting here would end the session under
				// its live connection. The entry goes, the queue stays.
				if e.info != nil {
					e.info("MQTT session expiry skipped: its queue has a consumer (the session is in use, on another node in a cluster)",
						"client_id", clientID)
				}
				_ = e.persistLocked()
				return
			}
		}
		// Deleted under e.mu: a client resuming now waits in connected
		// and then finds no session, rather than half of one. The file
		// is written after (the write lets go of e.mu): a crash between
		// leaves an entry whose timer finds no queue at the next start.
		if vh != nil {
			if _, err := vh.DeleteQueue(sessionQueue(clientID), false, false, 0); err == nil && e.info != nil {
				e.info("MQTT session expired: its queue was deleted", "client_id", clientID, "interval_s", en.interval)
			}
		}
		if e.ended != nil {
			e.ended(clientID) // its QoS 2 state goes with it
		}
		_ = e.persistLocked()
	})
	e.timers[clientID] = t
}

// persistLocked returns once the entries as they are now are in the file
// (or the write that would have put them there failed). e.mu is held, and
// let go while a write runs: the first caller to find none running writes
// the whole state, covering every change made until then, while later
// callers wait for it or write next.
func (e *sessionExpiry) persistLocked() error {
	if e.path == "" {
		return nil
	}
	e.version++
	v := e.version
	for e.written < v {
		if e.writing {
			e.cond.Wait()
			continue
		}
		target, out := e.version, e.encodeLocked()
		e.writing = true
		e.mu.Unlock()
		err := vfs.WriteFileAtomic(e.fs, e.path, out)
		e.mu.Lock()
		e.writing, e.written = false, target
		if err != nil {
			e.lastFailure = fmt.Errorf("mqtt: saving session expiry: %w", err)
		} else {
			e.okThrough, e.lastFailure = target, nil
		}
		e.cond.Broadcast()
	}
	if e.okThrough < v {
		// The last write covering this change failed, and none since
		// succeeded (each writes the whole state, so a later success
		// would have carried it).
		return e.lastFailure
	}
	return nil
}

// saveLocked writes the entries now, on the caller's goroutine.
func (e *sessionExpiry) saveLocked() error {
	if e.path == "" {
		return nil
	}
	if err := vfs.WriteFileAtomic(e.fs, e.path, e.encodeLocked()); err != nil {
		return fmt.Errorf("mqtt: saving session expiry: %w", err)
	}
	return nil
}

// encodeLocked is the file's contents: repeated (client id length u16,
// client id, interval u32, left int64 UnixNano), by client id.
func (e *sessionExpiry) encodeLocked() []byte {
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
	return out
}
