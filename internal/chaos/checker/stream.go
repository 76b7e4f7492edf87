package checker

import (
	"fmt"
	"math"
)

// checkStreams follows each stream reader (queue, process): after a
// subscribe at offset s its next delivery must be at s, and each delivery
// after one at offset o must be at o+1. Lower is a repeat or a read going
// back (fail); higher is a gap. Across readers one offset must hold one
// value (fail).
//
// A gap fails unless publishes that were refused explain it: Tern's
// stream offsets are its log's sequence numbers, and a write refused for a
// full disk consumes the numbers of the messages it carried (nacked, never
// stored), so a reader sees the offsets skip exactly there. A gap of k is
// excused only when at least k publishes to the stream that were not
// confirmed (nacked or unknown) and never delivered started between the
// publish of the value before the gap and the confirm of the value after
// it. Excused offsets are counted in Stats.StreamGapsExcused.
func checkStreams(ops []Op, pubs map[key]*published, delivered map[key][]Op, st *Stats) []Finding {
	type reader struct{ queue, process string }
	type at struct {
		queue  string
		offset int64
	}
	// Refused publishes per stream, for excusing gaps.
	refused := map[string][]Op{}
	for k, p := range pubs {
		if p.op.Type == "stream" && p.op.Outcome != OK && len(delivered[k]) == 0 {
			refused[k.queue] = append(refused[k.queue], p.op)
		}
	}
	explained := func(q string, before, after Op, gap int64) bool {
		from, to := int64(math.MinInt64), int64(math.MaxInt64)
		if p := pubs[key{q, before.Value}]; p != nil && before.Value != "" {
			from = p.op.Start
		}
		if p := pubs[key{q, after.Value}]; p != nil && p.op.End != 0 {
			to = p.op.End
		}
		var n int64
		for _, r := range refused[q] {
			if r.Start >= from && r.Start <= to {
				n++
			}
		}
		return n >= gap
	}
	next := map[reader]Op{} // the op that set the expectation
	last := map[reader]Op{} // the last delivery
	want := map[reader]int64{}
	values := map[at]Op{}
	var out []Finding
	for _, op := range ops {
		if op.Outcome != OK || op.Offset == nil {
			continue
		}
		r := reader{op.Queue, op.Process}
		switch op.Op {
		case OpSubscribe:
			want[r] = *op.Offset
			next[r] = op
		case OpConsume:
			o := *op.Offset
			if prev, ok := next[r]; ok {
				w := want[r]
				switch {
				case o < w:
					out = append(out, Finding{Queue: op.Queue, Value: op.Value, Detail: fmt.Sprintf("repeat or going back: offset %d where %d was due", o, w), Lines: []int{prev.Line, op.Line}})
				case o > w && explained(op.Queue, last[r], op, o-w):
					st.StreamGapsExcused += int(o - w)
				case o > w:
					out = append(out, Finding{Queue: op.Queue, Value: op.Value, Detail: fmt.Sprintf("gap: offset %d where %d was due", o, w), Lines: []int{prev.Line, op.Line}})
				}
			}
			want[r] = o + 1
			next[r], last[r] = op, op
			a := at{op.Queue, o}
			if first, ok := values[a]; ok && first.Value != op.Value {
				out = append(out, Finding{Queue: op.Queue, Value: op.Value, Detail: fmt.Sprintf("offset %d holds %s and %s", o, first.Value, op.Value), Lines: []int{first.Line, op.Line}})
			} else if !ok {
				values[a] = op
			}
		}
	}
	return out
}
