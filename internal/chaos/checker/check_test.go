package checker

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// h builds hand-made histories: each helper appends one op with the next
// timestamp, so line order is time order unless a test says otherwise.
type h struct {
	ops []Op
	now int64
}

func (b *h) add(op Op) *h {
	b.now += int64(time.Millisecond)
	if op.Start == 0 {
		op.Start = b.now
	}
	if op.End == 0 && op.Outcome != Unknown {
		op.End = b.now + int64(time.Microsecond)
	}
	op.Line = len(b.ops) + 1
	b.ops = append(b.ops, op)
	return b
}

func (b *h) pub(q, v, outcome string) *h {
	return b.add(Op{Process: "p", Op: OpPublish, Protocol: "amqp", Queue: q, Type: "classic", Value: v, Hash: HashOf(v), Outcome: outcome})
}

func (b *h) got(q, v string) *h {
	return b.add(Op{Process: "c", Op: OpConsume, Protocol: "amqp", Queue: q, Type: "classic", Value: v, Hash: HashOf(v), Outcome: OK})
}

func (b *h) redelivered(q, v string) *h {
	return b.add(Op{Process: "c", Op: OpConsume, Protocol: "amqp", Queue: q, Type: "classic", Value: v, Hash: HashOf(v), Outcome: OK, Redelivered: true})
}

func (b *h) drain() *h {
	return b.add(Op{Process: "runner", Op: OpDrain, Outcome: OK, DeadlineMS: 1000})
}

func off(n int64) *int64 { return &n }
func yes(b bool) *bool   { return &b }

// verdict returns the named verdict of a check of b.
func verdict(t *testing.T, b *h, name string) Verdict {
	t.Helper()
	r := Check(b.ops, Options{})
	for _, v := range r.Verdicts {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no verdict %q", name)
	return Verdict{}
}

func wantPass(t *testing.T, b *h, name string) {
	t.Helper()
	if v := verdict(t, b, name); !v.Passed {
		t.Fatalf("%s failed: %+v", name, v)
	}
}

func wantFail(t *testing.T, b *h, name string, count int) Verdict {
	t.Helper()
	v := verdict(t, b, name)
	if v.Passed || v.Count != count {
		t.Fatalf("%s: passed=%v count=%d, want a failure with %d: %+v", name, v.Passed, v.Count, count, v)
	}
	return v
}

func TestLost(t *testing.T) {
	ok := (&h{}).pub("q", "p1-1", OK).pub("q", "p1-2", OK).got("q", "p1-1").got("q", "p1-2").drain()
	wantPass(t, ok, VerdictLost)

	lost := (&h{}).pub("q", "p1-1", OK).pub("q", "p1-2", OK).got("q", "p1-1").drain()
	v := wantFail(t, lost, VerdictLost, 1)
	if e := v.Examples[0]; e.Value != "p1-2" || e.Lines[0] != 2 {
		t.Fatalf("finding %+v, want p1-2 at line 2", e)
	}

	// Delivered to another queue is not delivered to this one.
	elsewhere := (&h{}).pub("q", "p1-1", OK).pub("r", "p1-1", OK).got("r", "p1-1").drain()
	wantFail(t, elsewhere, VerdictLost, 1)

	// Nacked and unknown publishes may vanish.
	maybe := (&h{}).pub("q", "p1-1", Fail).pub("q", "p1-2", Unknown).drain()
	wantPass(t, maybe, VerdictLost)
}

func TestLostExcusesOnlyWhatAFaultDestroyed(t *testing.T) {
	b := (&h{}).pub("q", "p1-1", OK).pub("q", "p1-2", OK).pub("q", "p1-3", OK).got("q", "p1-1").
		add(Op{Process: "nemesis", Op: OpFault, Fault: "torn-tail", Node: 1, Outcome: OK, Destroyed: []string{"p1-3"}}).drain()
	v := wantFail(t, b, VerdictLost, 1)
	if v.Examples[0].Value != "p1-2" {
		t.Fatalf("lost %+v, want only p1-2", v.Examples)
	}
	if r := Check(b.ops, Options{}); r.Stats.Destroyed != 1 || r.Stats.Faults["torn-tail"] != 1 {
		t.Fatalf("stats %+v", r.Stats)
	}
}

func TestUnexpected(t *testing.T) {
	ok := (&h{}).pub("q", "p1-1", OK).got("q", "p1-1").drain()
	wantPass(t, ok, VerdictUnexpected)

	never := (&h{}).pub("q", "p1-1", OK).got("q", "p1-1").got("q", "p9-9").drain()
	wantFail(t, never, VerdictUnexpected, 1)

	wrongQueue := (&h{}).pub("q", "p1-1", OK).got("q", "p1-1").got("r", "p1-1").drain()
	wantFail(t, wrongQueue, VerdictUnexpected, 1)

	badHash := (&h{}).pub("q", "p1-1", OK).add(Op{Process: "c", Op: OpConsume, Queue: "q", Value: "p1-1", Hash: HashOf("p1-2"), Outcome: OK}).drain()
	wantFail(t, badHash, VerdictUnexpected, 1)

	// The publisher's own hash is compared too: a value published with a
	// hash the checker would not compute is a broken producer, not a pass.
	b := (&h{}).pub("q", "p1-1", OK)
	b.ops[0].Hash = "0000000000000000"
	b.got("q", "p1-1").drain()
	wantFail(t, b, VerdictUnexpected, 1)

	garbage := (&h{}).add(Op{Process: "c", Op: OpConsume, Queue: "q", Outcome: OK, Error: "body is not a value"}).drain()
	wantFail(t, garbage, VerdictUnexpected, 1)

	// A delivery of a nacked publish is not unexpected: it was published.
	nacked := (&h{}).pub("q", "p1-1", Fail).got("q", "p1-1").drain()
	wantPass(t, nacked, VerdictUnexpected)
	if r := Check(nacked.ops, Options{}); r.Stats.NackedSeen != 1 {
		t.Fatalf("nacked_delivered %d, want 1", r.Stats.NackedSeen)
	}
}

func TestDuplicatesAreCountedAndFailOnlyAtQoS2(t *testing.T) {
	amqp := (&h{}).pub("q", "p1-1", OK).got("q", "p1-1").redelivered("q", "p1-1").redelivered("q", "p1-1").drain()
	if v := verdict(t, amqp, VerdictDuplicates); !v.Passed || v.Count != 2 {
		t.Fatalf("duplicates %+v, want 2 counted, passed", v)
	}
	wantPass(t, amqp, VerdictExactlyOnce)

	mq := func(qos int) *h {
		b := &h{}
		b.add(Op{Process: "m", Op: OpPublish, Protocol: "mqtt", QoS: qos, Queue: "t/1", Type: "mqtt", Value: "m1-1", Hash: HashOf("m1-1"), Outcome: OK})
		for range 2 {
			b.add(Op{Process: "s", Op: OpConsume, Protocol: "mqtt", QoS: qos, Queue: "t/1", Type: "mqtt", Value: "m1-1", Hash: HashOf("m1-1"), Outcome: OK})
		}
		return b.drain()
	}
	wantPass(t, mq(1), VerdictExactlyOnce)
	wantFail(t, mq(2), VerdictExactlyOnce, 1)

	// Every reader of a stream reads every value: not duplicates.
	s := (&h{}).add(Op{Process: "p", Op: OpPublish, Queue: "s", Type: "stream", Value: "p1-1", Hash: HashOf("p1-1"), Outcome: OK})
	for _, r := range []string{"r1", "r2"} {
		s.add(Op{Process: r, Op: OpConsume, Queue: "s", Type: "stream", Value: "p1-1", Hash: HashOf("p1-1"), Outcome: OK, Offset: off(0)})
	}
	if v := verdict(t, s.drain(), VerdictDuplicates); v.Count != 0 {
		t.Fatalf("stream readers counted as duplicates: %+v", v)
	}
}

func TestRecoveredCountsUnknownOutcomesDelivered(t *testing.T) {
	b := (&h{}).pub("q", "p1-1", Unknown).pub("q", "p1-2", Unknown).got("q", "p1-1").drain()
	v := verdict(t, b, VerdictRecovered)
	if !v.Passed || v.Count != 1 {
		t.Fatalf("recovered %+v, want 1", v)
	}
	wantPass(t, b, VerdictLost)
}

func TestOrderOfFirstDeliveries(t *testing.T) {
	inOrder := (&h{}).pub("q", "p1-1", OK).pub("q", "p1-2", OK).pub("q", "p1-3", OK).got("q", "p1-1").got("q", "p1-2").got("q", "p1-3").drain()
	wantPass(t, inOrder, VerdictOrder)

	swapped := (&h{}).pub("q", "p1-1", OK).pub("q", "p1-2", OK).got("q", "p1-2").got("q", "p1-1").drain()
	v := wantFail(t, swapped, VerdictOrder, 1)
	if e := v.Examples[0]; e.Value != "p1-1" || len(e.Lines) != 2 || e.Lines[0] != 3 || e.Lines[1] != 4 {
		t.Fatalf("finding %+v", e)
	}

	// A requeue brings p1-1 back after p1-2 was first delivered: allowed.
	requeue := (&h{}).pub("q", "p1-1", OK).pub("q", "p1-2", OK).got("q", "p1-1").got("q", "p1-2").redelivered("q", "p1-1").drain()
	wantPass(t, requeue, VerdictOrder)

	// A message first seen after later ones, flagged redelivered (it came
	// back from a consumer that never showed it, by a cancel): allowed,
	// as AMQP promises order only for messages not redelivered.
	returned := (&h{}).pub("q", "p1-1", OK).pub("q", "p1-2", OK).pub("q", "p1-3", OK).got("q", "p1-2").redelivered("q", "p1-1").got("q", "p1-3").drain()
	wantPass(t, returned, VerdictOrder)
	// Unflagged, the same is a failure.
	unflagged := (&h{}).pub("q", "p1-1", OK).pub("q", "p1-2", OK).pub("q", "p1-3", OK).got("q", "p1-2").got("q", "p1-1").got("q", "p1-3").drain()
	wantFail(t, unflagged, VerdictOrder, 1)

	// Two publishers interleave freely; each one's own order counts.
	two := (&h{}).pub("q", "a-1", OK).pub("q", "b-1", OK).pub("q", "a-2", OK).pub("q", "b-2", OK).
		got("q", "b-1").got("q", "a-1").got("q", "b-2").got("q", "a-2").drain()
	wantPass(t, two, VerdictOrder)

	// Counters compare as numbers: p-10 after p-9 is in order.
	numeric := (&h{}).pub("q", "p-9", OK).pub("q", "p-10", OK).got("q", "p-9").got("q", "p-10").drain()
	wantPass(t, numeric, VerdictOrder)
}

func streamOp(process, op, v string, o int64) Op {
	x := Op{Process: process, Op: op, Queue: "s", Type: "stream", Outcome: OK, Offset: off(o)}
	if v != "" {
		x.Value, x.Hash = v, HashOf(v)
	}
	return x
}

func TestStreamOffsets(t *testing.T) {
	base := func() *h {
		b := &h{}
		for i := range 4 {
			v := "p-" + string(rune('1'+i))
			b.add(Op{Process: "p", Op: OpPublish, Queue: "s", Type: "stream", Value: v, Hash: HashOf(v), Outcome: OK})
		}
		return b.add(streamOp("r", OpSubscribe, "", 0))
	}
	ok := base().add(streamOp("r", OpConsume, "p-1", 0)).add(streamOp("r", OpConsume, "p-2", 1)).
		add(streamOp("r", OpSubscribe, "", 2)).add(streamOp("r", OpConsume, "p-3", 2)).add(streamOp("r", OpConsume, "p-4", 3)).drain()
	wantPass(t, ok, VerdictStream)

	gap := base().add(streamOp("r", OpConsume, "p-1", 0)).add(streamOp("r", OpConsume, "p-3", 2)).drain()
	if v := wantFail(t, gap, VerdictStream, 1); !strings.Contains(v.Examples[0].Detail, "gap") {
		t.Fatalf("finding %+v", v.Examples[0])
	}

	startGap := base().add(streamOp("r", OpConsume, "p-2", 1)).drain()
	wantFail(t, startGap, VerdictStream, 1)

	repeat := base().add(streamOp("r", OpConsume, "p-1", 0)).add(streamOp("r", OpConsume, "p-1", 0)).drain()
	if v := wantFail(t, repeat, VerdictStream, 1); !strings.Contains(v.Examples[0].Detail, "repeat") {
		t.Fatalf("finding %+v", v.Examples[0])
	}

	back := base().add(streamOp("r", OpConsume, "p-1", 0)).add(streamOp("r", OpConsume, "p-2", 1)).add(streamOp("r", OpConsume, "p-3", 2)).add(streamOp("r", OpConsume, "p-2", 1)).drain()
	wantFail(t, back, VerdictStream, 1)

	// Two readers disagree on what offset 1 holds.
	conflict := base().add(streamOp("r", OpConsume, "p-1", 0)).add(streamOp("r", OpConsume, "p-2", 1)).
		add(streamOp("r2", OpSubscribe, "", 1)).add(streamOp("r2", OpConsume, "p-3", 1)).drain()
	if v := wantFail(t, conflict, VerdictStream, 1); !strings.Contains(v.Examples[0].Detail, "holds") {
		t.Fatalf("finding %+v", v.Examples[0])
	}
}

func TestLiveness(t *testing.T) {
	ok := (&h{}).add(Op{Process: "runner", Op: OpRecover, Fault: "kill", Outcome: OK, Start: 1e9, End: 1e9 + 300e6, DeadlineMS: 1000}).
		add(Op{Process: "runner", Op: OpRecover, Fault: "kill", Outcome: OK, Start: 2e9, End: 2e9 + 100e6, DeadlineMS: 1000}).drain()
	wantPass(t, ok, VerdictLiveness)
	r := Check(ok.ops, Options{})
	if rec := r.Stats.Recovery["kill"]; rec.Count != 2 || rec.P50MS != 100 || rec.MaxMS != 300 {
		t.Fatalf("recovery %+v", rec)
	}

	late := (&h{}).add(Op{Process: "runner", Op: OpDrain, Outcome: OK, Start: 1e9, End: 3e9, DeadlineMS: 1000})
	wantFail(t, late, VerdictLiveness, 1)

	timedOut := (&h{}).add(Op{Process: "runner", Op: OpRecover, Fault: "pause", Outcome: Fail, Error: "no confirm within 30s"}).drain()
	wantFail(t, timedOut, VerdictLiveness, 1)

	unfinished := (&h{}).pub("q", "p-1", OK).got("q", "p-1")
	wantFail(t, unfinished, VerdictLiveness, 1)
}

func TestLinearizableMetadata(t *testing.T) {
	meta := func(op, outcome string, start, end int64, exists *bool) Op {
		return Op{Process: "meta", Op: op, Queue: "m0", Outcome: outcome, Start: start, End: end, Exists: exists}
	}
	ok := &h{}
	ok.add(meta(OpExists, OK, 1, 2, yes(false))).add(meta(OpDeclare, OK, 3, 4, nil)).add(meta(OpExists, OK, 5, 6, yes(true))).
		add(meta(OpDelete, OK, 7, 8, nil)).add(meta(OpExists, OK, 9, 10, yes(false)))
	wantPass(t, ok, VerdictLinearizable)

	// A declared queue that a later read says is gone (a lost declare).
	lostDeclare := &h{}
	lostDeclare.add(meta(OpDeclare, OK, 1, 2, nil)).add(meta(OpExists, OK, 3, 4, yes(false)))
	wantFail(t, lostDeclare, VerdictLinearizable, 1)

	// A read concurrent with the declare may see either.
	concurrent := &h{}
	concurrent.add(meta(OpDeclare, OK, 1, 10, nil)).add(meta(OpExists, OK, 2, 3, yes(false))).add(meta(OpExists, OK, 4, 5, yes(true)))
	wantPass(t, concurrent, VerdictLinearizable)

	// ... but not true, then false again, with nothing in between.
	flicker := &h{}
	flicker.add(meta(OpDeclare, OK, 1, 10, nil)).add(meta(OpExists, OK, 2, 3, yes(true))).add(meta(OpExists, OK, 4, 5, yes(false)))
	wantFail(t, flicker, VerdictLinearizable, 1)

	// An unknown declare may or may not have happened, at any time after it began.
	unknown := &h{}
	unknown.add(meta(OpDeclare, Unknown, 1, 0, nil)).add(meta(OpExists, OK, 3, 4, yes(false))).add(meta(OpExists, OK, 5, 6, yes(true)))
	wantPass(t, unknown, VerdictLinearizable)
	never := &h{}
	never.add(meta(OpDeclare, Unknown, 1, 0, nil)).add(meta(OpExists, OK, 3, 4, yes(false)))
	wantPass(t, never, VerdictLinearizable)

	// A failed delete leaves the queue.
	failedDelete := &h{}
	failedDelete.add(meta(OpDeclare, OK, 1, 2, nil)).add(meta(OpDelete, Fail, 3, 4, nil)).add(meta(OpExists, OK, 5, 6, yes(false)))
	wantFail(t, failedDelete, VerdictLinearizable, 1)

	// Queue names are independent.
	two := &h{}
	two.add(meta(OpDeclare, OK, 1, 2, nil))
	other := meta(OpExists, OK, 3, 4, yes(false))
	other.Queue = "m1"
	two.add(other)
	wantPass(t, two, VerdictLinearizable)
}

func TestReportCountsVerdicts(t *testing.T) {
	b := (&h{}).pub("q", "p1-1", OK).drain()
	r := Check(b.ops, Options{})
	if r.OK() || r.Failed != 1 || r.Passed != len(r.Verdicts)-1 {
		t.Fatalf("passed %d failed %d of %d", r.Passed, r.Failed, len(r.Verdicts))
	}
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil || !strings.Contains(buf.String(), `"name": "lost"`) {
		t.Fatalf("report %v %s", err, buf.String())
	}
}

func TestHistoryRoundTripAndErrors(t *testing.T) {
	b := (&h{}).pub("q", "p1-1", OK).got("q", "p1-1").add(streamOp("r", OpSubscribe, "", 0)).drain()
	var buf bytes.Buffer
	for _, op := range b.ops {
		if err := WriteOp(&buf, op); err != nil {
			t.Fatal(err)
		}
	}
	buf.WriteString("\n")
	got, err := ReadHistory(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(b.ops) || got[2].Line != 3 || *got[2].Offset != 0 || got[1].Value != "p1-1" {
		t.Fatalf("read back %+v", got)
	}
	for _, bad := range []string{
		`{"process":"p","op":"publish","outcome":"maybe","start":1,"end":2}`,
		`{"process":"p","op":"teleport","outcome":"ok","start":1,"end":2}`,
		`{"op":"publish","outcome":"ok","start":1,"end":2}`,
		`{"process":"p","op":"publish","outcome":"ok","surprise":1}`,
		`{"process":"p","op":"exists","outcome":"ok"}`,
		`{"process":"p","op":"subscribe","outcome":"ok"}`,
		`not json`,
	} {
		_, err := ReadHistory(strings.NewReader(`{"process":"p","op":"drain","outcome":"ok","start":1,"end":2}` + "\n" + bad + "\n"))
		if err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%s: error %v, want one naming line 2", bad, err)
		}
	}
}

func TestSplitValue(t *testing.T) {
	for _, c := range []struct {
		in   string
		prod string
		n    uint64
		ok   bool
	}{{"amqp-p1-17", "amqp-p1", 17, true}, {"p-0", "p", 0, true}, {"p", "", 0, false}, {"-5", "", 0, false}, {"p-x", "", 0, false}} {
		prod, n, ok := SplitValue(c.in)
		if prod != c.prod || n != c.n || ok != c.ok {
			t.Errorf("SplitValue(%q) = %q %d %v", c.in, prod, n, ok)
		}
	}
}

// Tern's stream offsets are dense: a gap fails even where publishes were
// refused meanwhile (a full disk's refused writes give their offsets to
// the next appends).
func TestStreamGapFailsEvenWithRefusedPublishes(t *testing.T) {
	spub := func(b *h, v, outcome string) {
		b.add(Op{Process: "p", Op: OpPublish, Queue: "s", Type: "stream", Value: v, Hash: HashOf(v), Outcome: outcome})
	}
	build := func(middle ...string) *h {
		b := &h{}
		spub(b, "p-1", OK)
		for i, outcome := range middle {
			spub(b, "p-"+string(rune('2'+i)), outcome)
		}
		spub(b, "p-9", OK)
		return b.add(streamOp("r", OpSubscribe, "", 0)).add(streamOp("r", OpConsume, "p-1", 0))
	}
	dense := build(Fail, Unknown).add(streamOp("r", OpConsume, "p-9", 1)).drain()
	wantPass(t, dense, VerdictStream)
	gap := build(Fail, Unknown).add(streamOp("r", OpConsume, "p-9", 3)).drain()
	wantFail(t, gap, VerdictStream, 1)
	confirmed := build(OK, OK).add(streamOp("r", OpConsume, "p-9", 3)).drain()
	wantFail(t, confirmed, VerdictStream, 1)
}

func TestSkippedFaultsAreCountedApart(t *testing.T) {
	b := (&h{}).pub("q", "p1-1", OK).got("q", "p1-1").
		add(Op{Process: "nemesis", Op: OpFault, Fault: "bandwidth", Node: 1, Outcome: Fail, Skipped: "no htb"}).
		add(Op{Process: "nemesis", Op: OpFault, Fault: "kill", Node: 1, Outcome: OK}).drain()
	r := Check(b.ops, Options{})
	if !r.OK() {
		t.Fatalf("a skipped fault failed the run: %+v", r.Verdicts)
	}
	if r.Stats.Faults["bandwidth"] != 0 || r.Stats.Skipped["bandwidth"] != 1 || r.Stats.SkipReasons["bandwidth"] != "no htb" || r.Stats.Faults["kill"] != 1 {
		t.Fatalf("stats %+v", r.Stats)
	}
}
