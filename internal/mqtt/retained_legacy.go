package mqtt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/tern-broker/tern/internal/message"
	"github.com/tern-broker/tern/internal/vfs"
)

// legacyRetainedFile is where versions before the store's record log kept
// retained messages: one file, rewritten whole on every change, without
// checksums.
const legacyRetainedFile = "mqtt-retained.bin"

// migrateLegacyRetained moves the retained messages of a previous
// version's file into the log, durably, then deletes the file. It runs
// before any client connects; a crash before the deletion runs it again
// next time, which puts the same messages again (a key keeps one).
func migrateLegacyRetained(fsys vfs.FS, dataDir string, log RetainedLog, r *retainedStore) (int, error) {
	path := filepath.Join(dataDir, legacyRetainedFile)
	raw, err := vfs.ReadFile(fsys, path)
	if errors.Is(err, vfs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("mqtt: retained messages: %w", err)
	}
	recs, err := parseLegacyRetained(raw)
	if err != nil {
		return 0, err
	}
	for _, rec := range recs {
		wait := make(durableWait, 1)
		if err := log.Put(rec.Key, rec.Msg, wait, 0); err != nil {
			return 0, fmt.Errorf("mqtt: migrating retained messages: %w", err)
		}
		if err := <-wait; err != nil {
			return 0, fmt.Errorf("mqtt: migrating retained messages: %w", err)
		}
	}
	r.mu.Lock()
	for _, rec := range recs {
		vh, topic, _ := strings.Cut(rec.Key, "\x00")
		r.setLocked(vh, topic, rec.Msg)
	}
	r.mu.Unlock()
	if err := fsys.Remove(path); err != nil {
		return 0, fmt.Errorf("mqtt: removing the migrated retained messages file: %w", err)
	}
	if err := fsys.SyncDir(dataDir); err != nil {
		return 0, fmt.Errorf("mqtt: %w", err)
	}
	return len(recs), nil
}

// parseLegacyRetained reads the previous format: repeated (vhost length
// u16, vhost, topic length u16, topic, message length u32, message record
// as message.AppendMessage), big-endian.
var errLegacyCorrupt = errors.New("mqtt: retained messages file is corrupt")

func parseLegacyRetained(raw []byte) ([]RetainedRecord, error) {
	var out []RetainedRecord
	for len(raw) > 0 {
		vh, rest, ok1 := cut16(raw)
		topic, rest, ok2 := cut16(rest)
		if !ok1 || !ok2 || len(rest) < 4 {
			return nil, errLegacyCorrupt
		}
		n := binary.BigEndian.Uint32(rest)
		if uint64(len(rest)-4) < uint64(n) {
			return nil, errLegacyCorrupt
		}
		m, err := message.DecodeMessage(rest[4 : 4+n])
		if err != nil {
			return nil, fmt.Errorf("mqtt: retained message: %w", err)
		}
		out = append(out, RetainedRecord{Key: retainedKey(string(vh), string(topic)), Msg: m})
		raw = rest[4+n:]
	}
	return out, nil
}

func cut16(b []byte) ([]byte, []byte, bool) {
	if len(b) < 2 {
		return nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b)-2 < n {
		return nil, nil, false
	}
	return b[2 : 2+n], b[2+n:], true
}
