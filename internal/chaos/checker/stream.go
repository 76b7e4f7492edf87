package checker

import "fmt"

// checkStreams follows each stream reader (queue, process): after a
// subscribe at offset s its next delivery must be at s, and each delivery
// after one at offset o must be at o+1. Lower is a repeat or a read going
// back (fail); higher is a gap. Across readers one offset must hold one
// value (fail).
//
// A stream delivery without an offset fails. A gap fails: Tern's stream
// offsets are dense. (Until a refused write's
// offsets were handed to the next appends — store.QueueLog.AppendNext — a
// write refused for a full disk left a gap there; histories saved from
// such a broker fail this verdict where their disk filled.)
func checkStreams(ops []Op, pubs map[key]*published, delivered map[key][]Op, st *Stats) []Finding {
	type reader struct{ queue, process string }
	type at struct {
		queue  string
		offset int64
	}
	next := map[reader]Op{} // the op that set the expectation
	last := map[reader]Op{} // the last delivery
	want := map[reader]int64{}
	values := map[at]Op{}
	var out []Finding
	for _, op := range ops {
		if op.Outcome == OK && op.Op == OpConsume && op.Type == "stream" && op.Offset == nil {
			// Without its offset a delivery proves nothing about the order;
			// a broker that stopped sending it must not pass by default.
			out = append(out, Finding{Queue: op.Queue, Value: op.Value, Detail: "stream delivery without an offset: " + op.Error, Lines: []int{op.Line}})
			continue
		}
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
