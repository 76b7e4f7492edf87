package wal

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/tern-broker/tern/internal/vfs"
)

// CorruptionError reports damage in the log that is not a torn final
// write: a record that fails its CRC or does not decode, with valid
// batches after it, or a missing segment. Recovery refuses to guess.
type CorruptionError struct {
	Path   string
	Offset int64
	Reason string
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("wal: corrupt log: %s at offset %d: %s", e.Path, e.Offset, e.Reason)
}

// recover replays every segment in order and opens the last for writing,
// cutting a torn final batch off it.
func (w *WAL) recover() error {
	start := time.Now()
	names, err := w.fs.List(w.dir)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	for _, n := range names {
		if id, ok := parseSegName(n); ok {
			w.segs = append(w.segs, id)
		}
	}
	slices.Sort(w.segs)
	if len(w.segs) == 0 {
		w.segs = []uint64{1}
		f, err := w.fs.Create(w.segPath(1))
		if err != nil {
			return fmt.Errorf("wal: %w", err)
		}
		w.active = f
		if err := w.fs.SyncDir(w.dir); err != nil {
			return fmt.Errorf("wal: %w", err)
		}
		return nil
	}
	for i, id := range w.segs {
		path := w.segPath(id)
		if i > 0 && id != w.segs[i-1]+1 {
			return &CorruptionError{Path: w.segPath(w.segs[i-1] + 1), Reason: "segment missing"}
		}
		raw, err := vfs.ReadFile(w.fs, path)
		if err != nil {
			return fmt.Errorf("wal: %w", err)
		}
		last := i == len(w.segs)-1
		valid, err := w.replay(raw, path, id, last)
		if err != nil {
			return err
		}
		if !last {
			continue
		}
		f, err := w.fs.OpenWrite(path)
		if err != nil {
			return fmt.Errorf("wal: %w", err)
		}
		w.active, w.activeSize = f, int64(valid)
		if valid < len(raw) {
			w.log.Warn("cutting a torn write off the log", "segment", path, "kept_bytes", valid, "dropped_bytes", len(raw)-valid)
			if err := f.Truncate(int64(valid)); err != nil {
				return fmt.Errorf("wal: cutting the torn tail of %s: %w", path, err)
			}
			if err := f.Sync(); err != nil {
				return fmt.Errorf("wal: %w", err)
			}
		}
	}
	for id, g := range w.groups {
		if err := g.st.finish(); err != nil {
			return &CorruptionError{Path: w.dir, Reason: fmt.Sprintf("group %d: %v", id, err)}
		}
	}
	w.log.Info("recovered write-ahead log", "segments", len(w.segs), "groups", len(w.groups),
		"took", time.Since(start).Round(time.Millisecond))
	return nil
}

// replay applies the batches of one segment and returns the length of
// its valid prefix. A damaged batch is a torn write — cut off — only in
// the last segment and only when no valid batch header follows it (a
// batch is written only after the one before it was fsynced, so a later
// batch proves this one was complete); anything else is corruption.
func (w *WAL) replay(raw []byte, path string, seg uint64, last bool) (int, error) {
	off := 0
	var recs []*record
	for off < len(raw) {
		recs = recs[:0]
		reason := ""
		typ, payload, n, err := parseRecord(raw[off:])
		switch {
		case err != nil:
			reason = "bad batch header"
		case typ != recBatch || len(payload) != 4:
			reason = fmt.Sprintf("record of type %d where a batch header belongs", typ)
		}
		var end int
		if reason == "" {
			end = off + n + int(binary.LittleEndian.Uint32(payload))
			if end > len(raw) {
				reason = "batch runs past the end of the segment"
			}
		}
		for p := off + n; reason == "" && p < end; {
			typ, payload, rn, err := parseRecord(raw[p:end])
			if err != nil {
				reason = fmt.Sprintf("bad record at offset %d", p)
				break
			}
			r, err := decodeRecord(typ, payload)
			if err != nil {
				// The CRC held, so this is not a torn write.
				return 0, &CorruptionError{Path: path, Offset: int64(p), Reason: err.Error()}
			}
			recs = append(recs, r)
			p += rn
		}
		if reason != "" {
			if last && !batchHeaderAfter(raw, off+1) {
				return off, nil
			}
			return 0, &CorruptionError{Path: path, Offset: int64(off), Reason: reason + ", with valid batches after it"}
		}
		for _, r := range recs {
			w.applyRecovered(r, seg)
		}
		off = end
	}
	return off, nil
}

// batchHeaderAfter reports whether a valid batch header starts anywhere at
// or after from.
func batchHeaderAfter(raw []byte, from int) bool {
	for p := from; p+batchHeaderLen <= len(raw); p++ {
		if raw[p+recordHeader] != recBatch || binary.LittleEndian.Uint32(raw[p:]) != batchHeaderLen-recordHeader {
			continue
		}
		if crcOf(raw[p+recordHeader:p+batchHeaderLen]) == binary.LittleEndian.Uint32(raw[p+4:]) {
			return true
		}
	}
	return false
}

func (w *WAL) applyRecovered(r *record, seg uint64) {
	if r.typ == recRemove {
		delete(w.groups, r.group)
		return
	}
	g, ok := w.groups[r.group]
	if !ok {
		g = &GroupStorage{w: w, id: r.group}
		w.groups[r.group] = g
	}
	g.st.apply(r)
	g.recorded = true
	g.pins.note(metaOf(r), seg)
}
