package chaos

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/tern-broker/tern/internal/chaos/checker"
)

// nemesis injects the schedule's faults in order, each at its time (or as
// soon as the previous one recovered), and records a fault op per fault and
// a recover op for the wait from its heal to the next confirm.
func (r *run) nemesis(ctx context.Context, start time.Time) error {
	for _, f := range r.sched.Faults {
		sleepCtx(ctx, time.Until(start.Add(time.Duration(f.AtMS)*time.Millisecond)))
		if ctx.Err() != nil {
			// A late fault (the ones before it took longer than planned,
			// on a loaded machine) is not injected, and says so.
			fmt.Fprintf(r.log, "workload ended before the %s at %d ms\n", f.Kind, f.AtMS)
			continue
		}
		op := r.inject(ctx, f)
		r.rec.add(op)
		if op.Skipped != "" {
			fmt.Fprintf(r.log, "%6.1fs  %-11s node %d  skipped: %s\n", time.Since(start).Seconds(), f.Kind, op.Node, op.Skipped)
			continue
		}
		fmt.Fprintf(r.log, "%6.1fs  %-11s node %d  %s %s%s\n", time.Since(start).Seconds(), f.Kind, op.Node, op.Outcome, op.Detail, op.Error)
		rec := checker.Op{Process: "nemesis", Node: op.Node, Op: checker.OpRecover, Fault: f.Kind, Start: op.End, DeadlineMS: r.prof.RecoverDeadline.Milliseconds()}
		deadline := time.Now().Add(r.prof.RecoverDeadline)
		r.trk.watch(op.End)
		for r.trk.firstConfirmAfter() == 0 && time.Now().Before(deadline) && ctx.Err() == nil {
			sleepCtx(ctx, 20*time.Millisecond)
		}
		rec.End = now()
		switch first := r.trk.firstConfirmAfter(); {
		case first != 0:
			// The recovery ends at that confirm, not at this poll.
			rec.End, rec.Outcome = first, checker.OK
		case ctx.Err() != nil:
			// The workload ended while waiting: no verdict either way.
			continue
		default:
			rec.Outcome, rec.Error = checker.Fail, fmt.Sprintf("no confirm within %v of the heal", r.prof.RecoverDeadline)
		}
		r.rec.add(rec)
	}
	return nil
}

// inject carries out one fault and returns its op (End: when it healed).
func (r *run) inject(ctx context.Context, f Fault) checker.Op {
	op := checker.Op{Process: "nemesis", Node: f.Node, Op: checker.OpFault, Fault: f.Kind, Start: now()}
	if why := r.skip[f.Kind]; why != "" {
		op.End, op.Outcome, op.Skipped = now(), checker.Fail, why
		return op
	}
	hold := time.Duration(f.DurationMS) * time.Millisecond
	var err error
	if f.Kind == FaultKillLeader {
		var leader int
		if leader, err = queueLeader(ctx, r.nodes, r.mainQueue.name); err != nil {
			op.End, op.Outcome, op.Error = now(), checker.Fail, err.Error()
			return op
		}
		f.Node, op.Node = leader, leader
	}
	n := r.nodes[f.Node-1]
	switch f.Kind {
	case FaultKillAll:
		err = r.killAll(ctx, hold)
		op.Detail = fmt.Sprintf("kill -9 of all %d nodes, down %v", len(r.nodes), hold)
	case FaultKillLeader:
		if err = n.Kill(); err == nil {
			sleepCtx(ctx, hold)
			err = n.Start(context.WithoutCancel(ctx))
		}
		op.Detail = fmt.Sprintf("kill -9 of %s's leader, down %v", r.mainQueue.name, hold)
	case FaultKill:
		if err = n.Kill(); err == nil {
			sleepCtx(ctx, hold)
			err = n.Start(context.WithoutCancel(ctx))
		}
		op.Detail = fmt.Sprintf("kill -9, down %v", hold)
	case FaultTornTail:
		if err = n.Kill(); err == nil {
			var t tornResult
			t, err = tearTail(n.DataDir, f)
			op.Detail, op.Destroyed = t.Detail, t.Destroyed
			r.trk.destroy(t.Destroyed)
			sleepCtx(ctx, hold)
			if startErr := n.Start(context.WithoutCancel(ctx)); err == nil {
				err = startErr
			}
		}
	case FaultPause:
		if err = n.Signal(syscall.SIGSTOP); err == nil {
			sleepCtx(ctx, hold)
			err = n.Signal(syscall.SIGCONT)
		}
		op.Detail = fmt.Sprintf("SIGSTOP for %v", hold)
	case FaultDiskFull:
		var wrote int64
		if wrote, err = fillDisk(r.fsDirs[f.Node-1], f.FreeBytes); err == nil {
			sleepCtx(ctx, hold)
			err = freeDisk(r.fsDirs[f.Node-1])
		}
		op.Detail = fmt.Sprintf("ballast of %d bytes leaving %d free for %v", wrote, f.FreeBytes, hold)
	case FaultBandwidth:
		var batch string
		if batch, err = TCBatch(f); err == nil {
			if err = applyTC(batch); err == nil {
				sleepCtx(ctx, hold)
				err = healTC()
			}
		}
		op.Detail = fmt.Sprintf("bandwidth %d kbit/s each way between node %d and node %d for %v", f.RateKbit, f.Node, f.Peer, hold)
	case FaultDelay:
		a, b := r.nodes[f.Node-1], r.nodes[f.Peer-1]
		if err = setDelay(a, b, f.DelayMS); err == nil {
			if err = setDelay(b, a, f.DelayMS); err == nil {
				sleepCtx(ctx, hold)
			}
		}
		err = errors.Join(err, setDelay(a, b, 0), setDelay(b, a, 0))
		op.Detail = fmt.Sprintf("delay %d ms each way between node %d and node %d for %v", f.DelayMS, f.Node, f.Peer, hold)
	case FaultClockSkew:
		if err = setSkew(n, f.SkewMS); err == nil {
			sleepCtx(ctx, hold)
		}
		err = errors.Join(err, setSkew(n, 0))
		op.Detail = fmt.Sprintf("broker clock %+d ms for %v", f.SkewMS, hold)
	case FaultPartition, FaultLoss:
		var script string
		if script, err = NFTRules(f, r.sched.Nodes); err == nil {
			if err = applyNFT(script); err == nil {
				sleepCtx(ctx, hold)
				err = healNFT()
			}
		}
		switch {
		case f.Kind == FaultLoss:
			op.Detail = fmt.Sprintf("loss %d%% between node %d and node %d for %v", f.LossPercent, f.Node, f.Peer, hold)
		case f.Partition == PartitionOneWay:
			op.Detail = fmt.Sprintf("partition one-way, node %d to node %d dropped, for %v", f.Node, f.Peer, hold)
		default:
			op.Detail = fmt.Sprintf("partition %s (node %d) for %v", f.Partition, f.Node, hold)
		}
	}
	op.End = now()
	op.Outcome = checker.OK
	if err != nil {
		op.Outcome, op.Error = checker.Fail, err.Error()
	}
	return op
}

// killAll kills every node, waits hold, then spawns them all before
// waiting for any: a cluster node opens its AMQP port only once the
// metadata group has a quorum again.
func (r *run) killAll(ctx context.Context, hold time.Duration) error {
	for _, n := range r.nodes {
		if err := n.Kill(); err != nil {
			return err
		}
	}
	sleepCtx(ctx, hold)
	for _, n := range r.nodes {
		if err := n.Spawn(); err != nil {
			return err
		}
	}
	for _, n := range r.nodes {
		if err := n.WaitListening(context.WithoutCancel(ctx)); err != nil {
			return err
		}
	}
	return nil
}
