package store

import (
	"testing"

	"github.com/tern-broker/tern/internal/vfs"
)

// FuzzDefinitionsLogRecovery: reading a definitions log of arbitrary bytes
// never panics; it returns records or an error. When it returns records,
// the torn tail (if any) is cut, so the file now holds exactly those
// records and reads back the same, without error. And a log of intact
// records cut anywhere (a crash mid-write) is never an error: the records
// before the cut come back, the rest is cut away.
func FuzzDefinitionsLogRecovery(f *testing.F) {
	var valid []byte
	for _, p := range []string{`{"op":"add_vhost","name":"v"}`, `{"op":"delete_queue","vhost":"/","name":"q"}`, "x"} {
		valid = appendRecord(valid, recCommand, []byte(p))
	}
	f.Add(valid, uint16(len(valid)))
	f.Add(valid, uint16(len(valid)-3))
	f.Add(append(append([]byte{}, valid...), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), uint16(9))
	f.Add(appendRecord(nil, recMessage, []byte{1, 0, 0, 0, 0, 0, 0, 0}), uint16(0))
	f.Add([]byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, content []byte, cut uint16) {
		const name = "/d/defs.log"
		m := vfs.NewMem()
		_ = m.MkdirAll("/d")
		file, _ := m.Create(name)
		_, _ = file.Write(content)
		_ = file.Close()
		recs, err := readCommandLog(m, name, true)
		if err == nil {
			size := 0
			for _, r := range recs {
				size += recordHeader + 1 + len(r.Data)
			}
			after, rerr := vfs.ReadFile(m, name)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if len(after) != size {
				t.Fatalf("after recovery the log holds %d bytes, its %d records %d", len(after), len(recs), size)
			}
			again, err := readCommandLog(m, name, true)
			if err != nil || len(again) != len(recs) {
				t.Fatalf("a recovered log reads back %d records, %v; want %d", len(again), err, len(recs))
			}
		}

		// Intact records from content's bytes, cut at cut.
		var log []byte
		var ends []int
		for i, rest := 0, content; len(rest) > 0 && i < 64; i++ {
			n := min(len(rest), 1+int(rest[0])%32)
			log = appendRecord(log, recCommand, rest[:n])
			ends = append(ends, len(log))
			rest = rest[n:]
		}
		at := min(int(cut), len(log))
		m2 := vfs.NewMem()
		_ = m2.MkdirAll("/d")
		file, _ = m2.Create(name)
		_, _ = file.Write(log[:at])
		_ = file.Close()
		recs, err = readCommandLog(m2, name, true)
		if err != nil {
			t.Fatalf("a log cut at %d of %d: %v", at, len(log), err)
		}
		want := 0
		for _, e := range ends {
			if e <= at {
				want++
			}
		}
		if len(recs) != want {
			t.Fatalf("a log cut at %d of %d returns %d records, want %d", at, len(log), len(recs), want)
		}

		// Preallocated: the first k records synced, then a write in
		// flight whose sectors a power cut kept or lost (back to zeros),
		// then the preallocated zeros. Never an error; the k synced
		// records and a prefix of the others come back.
		k := int(cut) % (len(ends) + 1)
		start := 0
		if k > 0 {
			start = ends[k-1]
		}
		torn := append([]byte(nil), log...)
		for i, lo := 0, start-start%vfs.SectorSize; lo < len(torn); i, lo = i+1, lo+vfs.SectorSize {
			if content[i%len(content)]&(1<<(i%8)) == 0 {
				clear(torn[max(lo, start):min(lo+vfs.SectorSize, len(torn))])
			}
		}
		torn = append(torn, make([]byte, int(cut)%3000)...)
		m3 := vfs.NewMem()
		_ = m3.MkdirAll("/d")
		file, _ = m3.Create(name)
		_, _ = file.Write(torn)
		_ = file.Close()
		recs, err = readCommandLog(m3, name, true)
		if err != nil {
			t.Fatalf("a power cut after %d synced records: %v", k, err)
		}
		if len(recs) < k {
			t.Fatalf("a power cut after %d synced records returns %d", k, len(recs))
		}
		next := 0
		for i, r := range recs {
			if r.Offset != next || r.Offset >= len(log) {
				t.Fatalf("record %d at %d is not the log's (want %d)", i, r.Offset, next)
			}
			next += recordHeader + 1 + len(r.Data)
		}
	})
}

// FuzzRecordLogRecovery mirrors FuzzSegmentRecovery for a RecordLog: a
// segment of arbitrary bytes never panics recovery; the log is refused or
// opens, and an open one returns each key once and stays writable.
func FuzzRecordLogRecovery(f *testing.F) {
	// A real record log's segment, written by Put and Remove.
	m := vfs.NewMem()
	st, err := Open(m, "/data", Options{})
	if err != nil {
		f.Fatal(err)
	}
	r, _, err := st.RecordLog("r")
	if err != nil {
		f.Fatal(err)
	}
	res := newResults()
	for i, k := range []string{"a", "b", "a"} {
		if err := r.Put(k, msg(uint64(i+1)), res, uint64(i+1)); err != nil {
			f.Fatal(err)
		}
	}
	r.Remove("b")
	if err := st.Close(); err != nil {
		f.Fatal(err)
	}
	seg, err := vfs.ReadFile(m, segmentName("/data/records/r", 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seg)
	f.Add(seg[:len(seg)-5])
	f.Add(appendRecord(nil, recMessage, []byte{1, 0, 0, 0, 0, 0, 0, 0}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, content []byte) {
		m := vfs.NewMem()
		_ = m.MkdirAll("/data/records/r")
		file, _ := m.Create(segmentName("/data/records/r", 0))
		_, _ = file.Write(content)
		_ = file.Close()
		st, err := Open(m, "/data", Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		r, recs, err := st.RecordLog("r")
		if err != nil {
			return // an unreadable log is refused, not a panic
		}
		seen := map[string]bool{}
		for _, rec := range recs {
			if seen[rec.Key] {
				t.Fatalf("key %q recovered twice", rec.Key)
			}
			seen[rec.Key] = true
		}
		if r.Len() != len(recs) {
			t.Fatalf("Len %d after recovering %d records", r.Len(), len(recs))
		}
		res := newResults()
		if err := r.Put("new-key", msg(1), res, 1); err != nil {
			t.Fatal(err)
		}
	})
}
