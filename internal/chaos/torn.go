package chaos

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// The store's record framing (docs/design/storage.md): length u32 (of type
// and payload), CRC-32C u32, then type and payload, little-endian.
const recordHeader = 8

// bodyValue finds the workload's values in raw record bytes.
var bodyValue = regexp.MustCompile(`chaos ([a-z0-9]+-[0-9]+) [0-9a-f]{16}`)

// tornResult says what a torn-tail fault did.
type tornResult struct {
	Segment   string
	Detail    string
	Destroyed []string // workload values in the record it cut
}

// tearTail damages the newest segment of one queue log under dataDir while
// the node is down: it either cuts f.TornBytes from the end, never more
// than the last complete record so exactly one record is torn, or appends
// f.TornBytes of garbage. A cut chooses the most recently written log that
// is not a stream's (a stream reader that already read the torn record
// would then see another value at its offset, a consequence of the fault,
// not of the broker); when there is none, it appends garbage instead.
func tearTail(dataDir string, f Fault) (tornResult, error) {
	if err := RequireSandbox(); err != nil {
		return tornResult{}, err
	}
	return tearTailIn(dataDir, f)
}

func tearTailIn(dataDir string, f Fault) (tornResult, error) {
	segs, err := newestSegments(dataDir)
	if err != nil {
		return tornResult{}, err
	}
	if len(segs) == 0 {
		return tornResult{Detail: "no queue segment to tear"}, nil
	}
	if !f.Garbage {
		for _, s := range segs {
			b, err := os.ReadFile(s)
			if err != nil {
				return tornResult{}, err
			}
			if len(b) == 0 || strings.Contains(string(b), "chaos st") {
				continue
			}
			return cutLastRecord(s, b, f.TornBytes)
		}
	}
	return appendGarbage(segs[0], f)
}

// newestSegments returns each queue log's newest segment, most recently
// modified first.
func newestSegments(dataDir string) ([]string, error) {
	dirs, err := filepath.Glob(filepath.Join(dataDir, "queues", "*"))
	if err != nil {
		return nil, err
	}
	type seg struct {
		path string
		mod  int64
	}
	var out []seg
	for _, d := range dirs {
		names, _ := filepath.Glob(filepath.Join(d, "*.seg"))
		if len(names) == 0 {
			continue
		}
		slices.Sort(names) // named by zero-padded base sequence number
		st, err := os.Stat(names[len(names)-1])
		if err != nil {
			return nil, err
		}
		out = append(out, seg{names[len(names)-1], st.ModTime().UnixNano()})
	}
	slices.SortStableFunc(out, func(a, b seg) int { return cmp.Compare(b.mod, a.mod) })
	paths := make([]string, len(out))
	for i, s := range out {
		paths[i] = s.path
	}
	return paths, nil
}

// cutLastRecord truncates b (the contents of path) by k bytes, k at most
// the last complete record's size minus one.
func cutLastRecord(path string, b []byte, k int) (tornResult, error) {
	off, last := 0, -1
	for off+recordHeader <= len(b) {
		n := int(binary.LittleEndian.Uint32(b[off:]))
		if n <= 0 || off+recordHeader+n > len(b) {
			break
		}
		last = off
		off += recordHeader + n
	}
	if last < 0 {
		return tornResult{Segment: path, Detail: "no complete record to tear"}, nil
	}
	rec := b[last:off]
	k = max(1, min(k, len(rec)-1))
	if err := os.Truncate(path, int64(off-k)); err != nil {
		return tornResult{}, fmt.Errorf("chaos: truncate %s: %w", path, err)
	}
	r := tornResult{Segment: path, Detail: fmt.Sprintf("cut %d of the last record's %d bytes (type %d) from %s, %d bytes long", k, len(rec), rec[recordHeader], path, len(b))}
	for _, m := range bodyValue.FindAllSubmatch(rec, -1) {
		r.Destroyed = append(r.Destroyed, string(m[1]))
	}
	return r, nil
}

func appendGarbage(path string, f Fault) (tornResult, error) {
	rng := rand.New(rand.NewPCG(uint64(f.AtMS), uint64(f.TornBytes)))
	junk := make([]byte, max(f.TornBytes, 1))
	for i := range junk {
		junk[i] = byte(rng.UintN(256))
	}
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return tornResult{}, err
	}
	defer fh.Close()
	if _, err := fh.Write(junk); err != nil {
		return tornResult{}, fmt.Errorf("chaos: append to %s: %w", path, err)
	}
	return tornResult{Segment: path, Detail: fmt.Sprintf("appended %d bytes of garbage to %s", len(junk), path)}, nil
}
