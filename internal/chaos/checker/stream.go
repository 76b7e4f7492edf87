package checker

import "fmt"

// checkStreams follows each stream reader (queue, process): after a
// subscribe at offset s its next delivery must be at s, and each delivery
// after one at offset o must be at o+1. Lower is a repeat or a read going
// back, higher is a gap. Across readers one offset must hold one value.
func checkStreams(ops []Op) []Finding {
	type reader struct{ queue, process string }
	type at struct {
		queue  string
		offset int64
	}
	next := map[reader]Op{} // the op that set the expectation
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
				if w := want[r]; o != w {
					kind := "gap"
					if o < w {
						kind = "repeat or going back"
					}
					out = append(out, Finding{Queue: op.Queue, Value: op.Value, Detail: fmt.Sprintf("%s: offset %d where %d was due", kind, o, w), Lines: []int{prev.Line, op.Line}})
				}
			}
			want[r] = o + 1
			next[r] = op
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
