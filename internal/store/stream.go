package store

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"sort"
	"time"

	"github.com/tern-broker/tern/internal/vfs"
)

// Stream support: a stream's log keeps messages after acknowledgement;
// readers follow the durable end, retention drops whole segments from the
// head, and named consumers' offsets are stored beside the segments.

// FilterHash returns the hash of seq's filter value (0 for none) from the
// index, so a filtered reader skips messages without reading them.
func (l *QueueLog) FilterHash(seq uint64) (uint32, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.segmentOf(seq)
	if s == nil {
		return 0, false
	}
	i := s.find(seq)
	if i < 0 {
		return 0, false
	}
	return s.idx[i].filter, true
}

// DurableSeq returns one past the highest offset known durable: a stream
// reader never goes past it, so it never sees an unconfirmed message.
func (l *QueueLog) DurableSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.durable
}

// FirstSeq returns the oldest offset still held.
func (l *QueueLog) FirstSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.segs {
		if len(s.idx) > 0 {
			return s.idx[0].seq
		}
	}
	return l.durable
}

// SeqAtTime returns the first offset published at or after ts (UnixNano).
func (l *QueueLog) SeqAtTime(ts int64) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.segs {
		n := len(s.idx)
		if n == 0 || s.idx[n-1].published < ts {
			continue
		}
		i := sort.Search(n, func(i int) bool { return s.idx[i].published >= ts })
		return s.idx[i].seq
	}
	return l.appended
}

// OnDurable registers f to be called, from the commit goroutine and
// without locks, whenever more of the log becomes durable.
func (l *QueueLog) OnDurable(f func()) {
	l.mu.Lock()
	l.onDurable = f
	l.mu.Unlock()
}

func (l *QueueLog) advanceDurable(upTo uint64) {
	l.mu.Lock()
	moved := upTo > l.durable
	if moved {
		l.durable = upTo
	}
	f := l.onDurable
	l.mu.Unlock()
	if moved && f != nil {
		f()
	}
}

// ApplyRetention drops whole segments from the head (never the active one)
// while one is past any limit: its messages are all outside the newest
// maxLen messages, or outside the newest maxBytes bytes, or all older than
// maxAge. A limit below 0 (or a zero maxAge) is off. It returns how many
// segments went.
func (l *QueueLog) ApplyRetention(maxLen, maxBytes int64, maxAge time.Duration) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var count, bytes int64
	for _, s := range l.segs {
		count += int64(len(s.idx))
		bytes += s.end
	}
	dropped := 0
	for len(l.segs) > 1 {
		s := l.segs[0]
		n := int64(len(s.idx))
		past := (maxLen >= 0 && count-n >= maxLen) || (maxBytes >= 0 && bytes-s.end >= maxBytes)
		if maxAge > 0 && n > 0 && time.Since(time.Unix(0, s.idx[n-1].published)) > maxAge {
			past = true
		}
		if !past {
			break
		}
		_ = s.file.Close()
		_ = l.st.fs.Remove(s.path)
		_ = l.st.fs.Remove(s.idxPath())
		l.segs = l.segs[1:]
		l.dirDirty = true
		count, bytes = count-n, bytes-s.end
		dropped++
		l.st.stats.segmentsDeleted.Add(1)
	}
	return dropped
}

// StoreOffset records a named consumer's last acknowledged offset; it is
// written with the next commit.
func (l *QueueLog) StoreOffset(name string, offset uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.offsets == nil {
		l.offsets = map[string]uint64{}
	}
	if cur, ok := l.offsets[name]; ok && cur >= offset {
		return
	}
	l.offsets[name] = offset
	l.offsetsDirty = true
	l.st.com.add(l, false)
}

// StoredOffset returns a named consumer's stored offset.
func (l *QueueLog) StoredOffset(name string) (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.offsets[name]
	return v, ok
}

const offsetsFile = "offsets.json"

func (l *QueueLog) saveOffsetsLocked() error {
	raw, err := json.Marshal(l.offsets)
	if err != nil {
		return err
	}
	return vfs.WriteFileAtomic(l.st.fs, filepath.Join(l.dir, offsetsFile), raw)
}

func (l *QueueLog) loadOffsets() error {
	raw, err := vfs.ReadFile(l.st.fs, filepath.Join(l.dir, offsetsFile))
	if errors.Is(err, vfs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return json.Unmarshal(raw, &l.offsets)
}
