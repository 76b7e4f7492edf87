package checker

import (
	"fmt"
	"math"
	"time"

	"github.com/anishathalye/porcupine"
)

// metaIn and metaOut are a metadata op's input and output for porcupine.
type metaIn struct {
	queue string
	op    string
}

type metaOut struct {
	outcome string
	exists  bool
}

// queueModel is the sequential specification of one queue name's
// existence: declare creates, delete removes, exists reports. A failed op
// changes nothing; an op with an unknown outcome may or may not have taken
// effect (both states follow), which is why the model is nondeterministic.
var queueModel = porcupine.NondeterministicModel{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var names []string
		for _, op := range h {
			q := op.Input.(metaIn).queue
			if by[q] == nil {
				names = append(names, q)
			}
			by[q] = append(by[q], op)
		}
		out := make([][]porcupine.Operation, 0, len(names))
		for _, n := range names {
			out = append(out, by[n])
		}
		return out
	},
	Init: func() []interface{} { return []interface{}{false} },
	Step: func(state, input, output interface{}) []interface{} {
		s := state.(bool)
		in, out := input.(metaIn), output.(metaOut)
		var applied bool
		switch in.op {
		case OpDeclare:
			applied = true
		case OpDelete:
			applied = false
		case OpExists:
			if out.outcome == OK && out.exists != s {
				return nil
			}
			return []interface{}{s}
		}
		switch out.outcome {
		case OK:
			return []interface{}{applied}
		case Fail:
			return []interface{}{s}
		default:
			return []interface{}{s, applied}
		}
	},
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(metaIn), output.(metaOut)
		return fmt.Sprintf("%s(%s) -> %s exists=%v", in.op, in.queue, out.outcome, out.exists)
	},
}

// checkLinearizable checks the metadata ops for linearizability. An op
// that never returned (End 0) or whose outcome is unknown is open until
// the end of time: it may take effect at any point after its start.
func checkLinearizable(meta []Op, timeout time.Duration) ([]Finding, string) {
	if len(meta) == 0 {
		return nil, "no metadata operations"
	}
	h := make([]porcupine.Operation, 0, len(meta))
	for i, op := range meta {
		end := op.End
		if end == 0 || op.Outcome == Unknown {
			end = math.MaxInt64
		}
		out := metaOut{outcome: op.Outcome}
		if op.Exists != nil {
			out.exists = *op.Exists
		}
		h = append(h, porcupine.Operation{ClientId: i, Input: metaIn{queue: op.Queue, op: op.Op}, Call: op.Start, Output: out, Return: end})
	}
	res := porcupine.CheckOperationsTimeout(queueModel.ToModel(), h, timeout)
	detail := fmt.Sprintf("%d declare/delete/exists ops checked with porcupine", len(meta))
	switch res {
	case porcupine.Ok:
		return nil, detail
	case porcupine.Illegal:
		lines := make([]int, 0, len(meta))
		for _, op := range meta {
			lines = append(lines, op.Line)
		}
		if len(lines) > 50 {
			lines = lines[:50]
		}
		return []Finding{{Detail: "metadata history is not linearizable", Lines: lines}}, detail
	default:
		return []Finding{{Detail: fmt.Sprintf("porcupine gave no answer within %v", timeout)}}, detail
	}
}
