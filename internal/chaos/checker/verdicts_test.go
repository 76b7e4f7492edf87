package checker

import (
	"strings"
	"testing"
)

func (b *h) empty(q, outcome, detail string) *h {
	op := Op{Process: "runner", Op: OpEmpty, Queue: q, Outcome: outcome, Detail: detail, DeadlineMS: 1000}
	if outcome != OK {
		op.Error = "messages left"
	}
	return b.add(op)
}

// A value received once and never acked, then kept by the broker (checked
// out to a consumer that is gone): the deliveries say nothing is lost,
// the end-of-run queue check says the queue still holds it.
func TestStrandedFailsWhenTheQueueHoldsMessagesAfterTheDrain(t *testing.T) {
	stranded := (&h{}).pub("q", "p1-1", OK).pub("q", "p1-2", OK).got("q", "p1-1").got("q", "p1-2").drain().
		empty("q", Fail, "n1: ready 0 unacked 1")
	wantPass(t, stranded, VerdictLost) // what the checker saw before: every value delivered once
	v := wantFail(t, stranded, VerdictStranded, 1)
	if e := v.Examples[0]; e.Queue != "q" || !strings.Contains(e.Detail, "unacked 1") || e.Lines[0] != 6 {
		t.Fatalf("finding %+v", e)
	}
	if r := Check(stranded.ops, Options{}); r.OK() {
		t.Fatal("the run passes with a message stranded in the queue")
	}

	empty := (&h{}).pub("q", "p1-1", OK).got("q", "p1-1").drain().empty("q", OK, "n1: ready 0 unacked 0")
	wantPass(t, empty, VerdictStranded)

	// A check that could not tell (no node answered) is no pass.
	unknown := (&h{}).pub("q", "p1-1", OK).got("q", "p1-1").drain().empty("q", Unknown, "no node answered")
	wantFail(t, unknown, VerdictStranded, 1)
}

// A fault the schedule asked for that failed to inject (nft missing, a
// kill that failed, a node that did not come back) fails the run: it
// tested nothing of what it claims.
func TestFaultsFailWhenAFaultWasNotInjected(t *testing.T) {
	ok := (&h{}).add(Op{Process: "nemesis", Op: OpFault, Fault: "kill", Node: 1, Outcome: OK}).drain()
	wantPass(t, ok, VerdictFaults)

	failed := (&h{}).add(Op{Process: "nemesis", Op: OpFault, Fault: "kill", Node: 1, Outcome: OK}).
		add(Op{Process: "nemesis", Op: OpFault, Fault: "partition", Node: 2, Outcome: Fail, Error: "nft: command not found"}).drain()
	v := wantFail(t, failed, VerdictFaults, 1)
	if e := v.Examples[0]; !strings.Contains(e.Detail, "partition on node 2") || !strings.Contains(e.Detail, "nft") {
		t.Fatalf("finding %+v", e)
	}
	if r := Check(failed.ops, Options{}); r.Stats.Faults["partition"] != 0 || r.Stats.Faults["kill"] != 1 {
		t.Fatalf("faults %v", r.Stats.Faults)
	}
}

// A stream delivery without its offset proves nothing about the order:
// it fails stream-offsets (and, carrying the runner's error, unexpected).
func TestStreamDeliveryWithoutOffsetFails(t *testing.T) {
	noOffset := Op{Process: "r", Op: OpConsume, Protocol: "amqp", Queue: "s", Type: "stream", Value: "st1-1", Hash: HashOf("st1-1"),
		Outcome: OK, Error: "no x-stream-offset header (<nil>)"}
	b := (&h{}).add(Op{Process: "p", Op: OpPublish, Protocol: "amqp", Queue: "s", Type: "stream", Value: "st1-1", Hash: HashOf("st1-1"), Outcome: OK}).
		add(noOffset).drain()
	if v := wantFail(t, b, VerdictStream, 1); !strings.Contains(v.Examples[0].Detail, "without an offset") {
		t.Fatalf("finding %+v", v.Examples[0])
	}
	if v := wantFail(t, b, VerdictUnexpected, 1); !strings.Contains(v.Examples[0].Detail, "x-stream-offset") {
		t.Fatalf("finding %+v", v.Examples[0])
	}
}
