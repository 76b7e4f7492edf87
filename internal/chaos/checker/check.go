package checker

import (
	"fmt"
	"slices"
	"time"
)

// Options tune a check.
type Options struct {
	// LinearizabilityTimeout bounds the porcupine search; default 10 s.
	LinearizabilityTimeout time.Duration
}

// Verdict names, in report order.
const (
	VerdictLost         = "lost"
	VerdictStranded     = "stranded"
	VerdictUnexpected   = "unexpected"
	VerdictDuplicates   = "duplicates"
	VerdictExactlyOnce  = "exactly-once"
	VerdictRecovered    = "recovered"
	VerdictOrder        = "order"
	VerdictStream       = "stream-offsets"
	VerdictLiveness     = "liveness"
	VerdictLinearizable = "linearizable"
	VerdictFaults       = "faults"
)

type key struct{ queue, value string }

// published is what the history says about one value's publish.
type published struct {
	op Op // the publish op (the last one, if a value was published twice)
	n  int
}

// Check judges a history. The ops are taken in the order given (the order
// of the file), which is the order the runner recorded them in.
func Check(ops []Op, opt Options) *Report {
	if opt.LinearizabilityTimeout <= 0 {
		opt.LinearizabilityTimeout = 10 * time.Second
	}
	st := Stats{Ops: len(ops), Faults: map[string]int{}, Recovery: map[string]Recovery{}, Skipped: map[string]int{}, SkipReasons: map[string]string{}}
	pubs := map[key]*published{}
	var pubOrder []key
	delivered := map[key][]Op{}
	var consumes []Op
	destroyed := map[string]bool{}
	var meta, waits, empties, faultsFailed []Op
	for _, op := range ops {
		switch op.Op {
		case OpPublish:
			st.Published++
			switch op.Outcome {
			case OK:
				st.Confirmed++
			case Fail:
				st.Nacked++
			default:
				st.Unknown++
			}
			k := key{op.Queue, op.Value}
			p := pubs[k]
			if p == nil {
				p = &published{}
				pubs[k] = p
				pubOrder = append(pubOrder, k)
			}
			p.op, p.n = op, p.n+1
		case OpConsume:
			if op.Outcome != OK {
				continue
			}
			st.Deliveries++
			consumes = append(consumes, op)
			k := key{op.Queue, op.Value}
			delivered[k] = append(delivered[k], op)
		case OpFault:
			if op.Skipped != "" {
				st.Skipped[op.Fault]++
				st.SkipReasons[op.Fault] = op.Skipped
				continue
			}
			if op.Outcome == OK {
				st.Faults[op.Fault]++
			} else {
				faultsFailed = append(faultsFailed, op)
			}
			for _, v := range op.Destroyed {
				destroyed[v] = true
			}
		case OpDeclare, OpDelete, OpExists:
			st.MetaOps++
			meta = append(meta, op)
		case OpDrain, OpRecover:
			waits = append(waits, op)
		case OpEmpty:
			empties = append(empties, op)
		}
	}
	st.Delivered = len(delivered)

	var v verdicts
	lost := checkLost(pubs, pubOrder, delivered, destroyed, &st)
	v.add(VerdictLost, lost, true, "publishes confirmed ok and never delivered")
	v.add(VerdictStranded, checkStranded(empties), true, "messages left in a queue (ready or unacked) after the drain")
	v.add(VerdictUnexpected, checkUnexpected(consumes, pubs), true, "deliveries never published, or whose hash does not match the value")
	dups, exact := checkDuplicates(delivered, pubs)
	st.Duplicates = dups
	v.add(VerdictDuplicates, nil, false, fmt.Sprintf("%d deliveries beyond the first (at-least-once: allowed)", dups))
	v.list[len(v.list)-1].Count = dups
	v.add(VerdictExactlyOnce, exact, true, "values delivered twice at MQTT QoS 2")
	v.add(VerdictRecovered, nil, false, fmt.Sprintf("%d publishes with an unknown outcome were delivered", st.Recovered))
	v.list[len(v.list)-1].Count = st.Recovered
	v.add(VerdictOrder, checkOrder(consumes, pubs), true, "per publisher, first deliveries out of counter order")
	v.add(VerdictStream, checkStreams(ops, pubs, delivered, &st), true, "stream offsets with gaps, repeats, going back, or two values at one offset")
	v.add(VerdictLiveness, checkLiveness(waits, st.Published > 0, &st), true, "drain or recovery failed or past its deadline")
	lin, detail := checkLinearizable(meta, opt.LinearizabilityTimeout)
	v.add(VerdictLinearizable, lin, true, detail)
	v.add(VerdictFaults, checkFaults(faultsFailed), true, "faults the schedule asked for that could not be injected or undone")

	r := &Report{Verdicts: v.list, Stats: st}
	for _, vd := range r.Verdicts {
		if vd.Passed {
			r.Passed++
		} else {
			r.Failed++
		}
	}
	return r
}

func checkLost(pubs map[key]*published, order []key, delivered map[key][]Op, destroyed map[string]bool, st *Stats) []Finding {
	var out []Finding
	for _, k := range order {
		p := pubs[k]
		got := len(delivered[k]) > 0
		switch p.op.Outcome {
		case OK:
			if got {
				continue
			}
			if destroyed[k.value] {
				st.Destroyed++
				continue
			}
			out = append(out, Finding{Queue: k.queue, Value: k.value, Detail: "confirmed, never delivered", Lines: []int{p.op.Line}})
		case Unknown:
			if got {
				st.Recovered++
			}
		case Fail:
			if got {
				st.NackedSeen++
			}
		}
	}
	return out
}

// checkStranded fails every end-of-run queue check that found messages
// left (or could not tell): a value delivered once and never acked, then
// kept checked out to a consumer that is gone, or returned to nobody, is
// not lost in the history's deliveries but is in the queue.
func checkStranded(empties []Op) []Finding {
	var out []Finding
	for _, e := range empties {
		if e.Outcome != OK {
			out = append(out, Finding{Queue: e.Queue, Detail: fmt.Sprintf("%s: %s %s", e.Outcome, e.Error, e.Detail), Lines: []int{e.Line}})
		}
	}
	return out
}

// checkFaults fails every fault op that did not succeed: a run whose
// faults were not injected tested nothing, whatever its other verdicts.
func checkFaults(failed []Op) []Finding {
	var out []Finding
	for _, f := range failed {
		out = append(out, Finding{Detail: fmt.Sprintf("%s on node %d: %s %s", f.Fault, f.Node, f.Outcome, f.Error), Lines: []int{f.Line}})
	}
	return out
}

func checkUnexpected(consumes []Op, pubs map[key]*published) []Finding {
	var out []Finding
	for _, c := range consumes {
		p := pubs[key{c.Queue, c.Value}]
		switch {
		case c.Value == "":
			out = append(out, Finding{Queue: c.Queue, Detail: "delivery without a readable value: " + c.Error, Lines: []int{c.Line}})
		case c.Error != "":
			out = append(out, Finding{Queue: c.Queue, Value: c.Value, Detail: "delivery with a problem: " + c.Error, Lines: []int{c.Line}})
		case p == nil:
			out = append(out, Finding{Queue: c.Queue, Value: c.Value, Detail: "delivered, never published to this queue", Lines: []int{c.Line}})
		case c.Hash != HashOf(c.Value) || c.Hash != p.op.Hash:
			out = append(out, Finding{Queue: c.Queue, Value: c.Value, Detail: fmt.Sprintf("hash %q, published %q, expected %q", c.Hash, p.op.Hash, HashOf(c.Value)), Lines: []int{p.op.Line, c.Line}})
		}
	}
	return out
}

// checkDuplicates counts deliveries beyond the first of each value (per
// reader for streams, where every reader reads every value) and reports
// those that break MQTT QoS 2's exactly-once: a second delivery at QoS 2.
func checkDuplicates(delivered map[key][]Op, pubs map[key]*published) (int, []Finding) {
	n := 0
	var out []Finding
	keys := make([]key, 0, len(delivered))
	for k := range delivered {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int { return delivered[a][0].Line - delivered[b][0].Line })
	for _, k := range keys {
		seen := map[string]bool{}
		for _, d := range delivered[k] {
			group := ""
			if d.Type == "stream" {
				group = d.Process
			}
			if !seen[group] {
				seen[group] = true
				continue
			}
			n++
			if d.Protocol == "mqtt" && d.QoS == 2 {
				lines := []int{d.Line}
				if p := pubs[k]; p != nil {
					lines = append([]int{p.op.Line}, lines...)
				}
				out = append(out, Finding{Queue: k.queue, Value: k.value, Detail: "delivered again at QoS 2", Lines: lines})
			}
		}
	}
	return n, out
}

// checkOrder compares, per queue (per reader for streams) and per
// publisher, the counters of first deliveries: each must exceed the last.
// Redeliveries (a value seen before) are skipped, which is what lets AMQP
// requeue a message to its old position.
func checkOrder(consumes []Op, pubs map[key]*published) []Finding {
	type group struct{ queue, reader, producer string }
	last := map[group]Op{}
	first := map[key]map[string]bool{}
	var out []Finding
	for _, c := range consumes {
		if pubs[key{c.Queue, c.Value}] == nil {
			continue // unexpected, reported there
		}
		reader := ""
		if c.Type == "stream" {
			reader = c.Process
		}
		k := key{c.Queue, c.Value}
		if first[k] == nil {
			first[k] = map[string]bool{}
		}
		if first[k][reader] {
			continue
		}
		first[k][reader] = true
		if c.Redelivered {
			// The broker's promise (AMQP's, RabbitMQ's) is publish order
			// for messages not flagged redelivered: one that came back from
			// a consumer — even one whose client never saw it, returned by
			// a cancel — may arrive after later ones, flagged.
			continue
		}
		prod, n, ok := SplitValue(c.Value)
		if !ok {
			continue
		}
		g := group{c.Queue, reader, prod}
		if prev, ok := last[g]; ok {
			_, pn, _ := SplitValue(prev.Value)
			if n < pn {
				out = append(out, Finding{Queue: c.Queue, Value: c.Value, Detail: fmt.Sprintf("first delivered after %s", prev.Value), Lines: []int{prev.Line, c.Line}})
				continue
			}
		}
		last[g] = c
	}
	return out
}

func checkLiveness(waits []Op, needDrain bool, st *Stats) []Finding {
	var out []Finding
	drains := 0
	rec := map[string][]int64{}
	for _, w := range waits {
		if w.Op == OpDrain {
			drains++
		}
		took := (w.End - w.Start) / int64(time.Millisecond)
		switch {
		case w.Outcome != OK:
			out = append(out, Finding{Queue: w.Queue, Detail: fmt.Sprintf("%s %s: %s %s", w.Op, w.Fault, w.Outcome, w.Error), Lines: []int{w.Line}})
			continue
		case w.End < w.Start:
			out = append(out, Finding{Detail: fmt.Sprintf("%s ends before it starts", w.Op), Lines: []int{w.Line}})
			continue
		case w.DeadlineMS > 0 && took > w.DeadlineMS:
			out = append(out, Finding{Queue: w.Queue, Detail: fmt.Sprintf("%s %s took %d ms, deadline %d ms", w.Op, w.Fault, took, w.DeadlineMS), Lines: []int{w.Line}})
			continue
		}
		if w.Op == OpRecover {
			rec[w.Fault] = append(rec[w.Fault], took)
		}
	}
	if needDrain && drains == 0 {
		out = append(out, Finding{Detail: "the history has publishes but no drain: the run did not finish"})
	}
	for kind, ms := range rec {
		slices.Sort(ms)
		st.Recovery[kind] = Recovery{Count: len(ms), P50MS: ms[(len(ms)-1)/2], MaxMS: ms[len(ms)-1]}
	}
	return out
}
