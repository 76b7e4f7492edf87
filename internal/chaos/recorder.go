package chaos

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tern-broker/tern/internal/chaos/checker"
)

// recorder appends ops to history.jsonl in the order they are recorded;
// the lock makes that order the order of the calls.
type recorder struct {
	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	err error
}

func newRecorder(path string) (*recorder, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &recorder{f: f, w: bufio.NewWriter(f)}, nil
}

func (r *recorder) add(op checker.Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = checker.WriteOp(r.w, op)
	}
}

func (r *recorder) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.w.Flush(); r.err == nil {
		r.err = err
	}
	if err := r.f.Close(); r.err == nil {
		r.err = err
	}
	return r.err
}

// now is the history's clock: unix nanoseconds, with Go's monotonic
// reading behind time.Now keeping one process's stamps ordered.
func now() int64 { return time.Now().UnixNano() }

// tracker follows, for the runner's own decisions only (when the drain is
// over, when a fault has recovered), what is confirmed and delivered. The
// verdicts come from the history, by the checker.
type tracker struct {
	mu          sync.Mutex
	waiting     map[string]map[string]bool // queue → confirmed values not yet delivered
	delivered   map[string]map[string]bool
	destroyed   map[string]bool // values a torn-tail fault cut: never waited for
	lastConfirm int64
	// watchFrom and firstAfter time a recovery: after watch(ts),
	// firstAfter is the time of the first confirm later than ts (0: none
	// yet), exact rather than rounded to the nemesis's polling.
	watchFrom, firstAfter int64
}

func newTracker() *tracker {
	return &tracker{waiting: map[string]map[string]bool{}, delivered: map[string]map[string]bool{}, destroyed: map[string]bool{}}
}

// destroy stops waiting for values a fault destroyed on disk (the checker
// excuses them the same way).
func (t *tracker) destroy(values []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, v := range values {
		t.destroyed[v] = true
		for _, m := range t.waiting {
			delete(m, v)
		}
	}
}

func (t *tracker) confirmed(queue, value string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lastConfirm = now()
	if t.watchFrom != 0 && t.firstAfter == 0 && t.lastConfirm > t.watchFrom {
		t.firstAfter = t.lastConfirm
	}
	if t.delivered[queue][value] || t.destroyed[value] {
		return
	}
	if t.waiting[queue] == nil {
		t.waiting[queue] = map[string]bool{}
	}
	t.waiting[queue][value] = true
}

func (t *tracker) got(queue, value string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.delivered[queue] == nil {
		t.delivered[queue] = map[string]bool{}
	}
	t.delivered[queue][value] = true
	delete(t.waiting[queue], value)
}

// outstanding counts confirmed values not yet delivered.
func (t *tracker) outstanding() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, m := range t.waiting {
		n += len(m)
	}
	return n
}

// watch starts timing a recovery from ts (a fault's heal). A confirm
// that came between ts and this call is taken as the first (the gap is
// the microseconds since the fault returned).
func (t *tracker) watch(ts int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.watchFrom, t.firstAfter = ts, 0
	if t.lastConfirm > ts {
		t.firstAfter = t.lastConfirm
	}
}

// firstConfirmAfter is the first confirm since watch's ts, or 0.
func (t *tracker) firstConfirmAfter() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.firstAfter
}

// body is what a producer sends: a marker the torn-tail fault can find in
// raw segment bytes, the value, its hash, and padding.
func body(value string) []byte {
	s := fmt.Sprintf("chaos %s %s ", value, checker.HashOf(value))
	return []byte(s + strings.Repeat("x", max(0, 200-len(s))))
}

// parseBody reads a delivery's value and hash; a body that is not one of
// ours yields an empty value and the reason.
func parseBody(b []byte) (value, hash, problem string) {
	f := strings.Fields(string(b))
	if len(f) < 3 || f[0] != "chaos" {
		n := min(len(b), 40)
		return "", "", fmt.Sprintf("body is not a chaos value: %q", b[:n])
	}
	return f[1], f[2], ""
}
