package chaos

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tern-broker/tern/internal/chaos/checker"
)

// executeCluster runs the 3- or 5-node workload: quorum queues only.
// AMQP producers with confirms and a consumer with manual acks, each
// (re)connecting to a seed-chosen node, and the metadata client. Streams
// and MQTT session queues stay on the node that made them (docs/
// clustering.md), so a client on another node would only measure that;
// they are the single-node workload's.
func (r *run) executeCluster(ctx context.Context) error {
	prof := r.prof
	qq := queueSpec{quorumQueue, "quorum"}
	r.mainQueue = qq
	if err := declareQueues(ctx, r.nodes[0], []queueSpec{qq}); err != nil {
		return err
	}
	if _, err := queueLeader(ctx, r.nodes, qq.name); err != nil {
		return err
	}
	consumers, stopConsumers := context.WithCancel(ctx)
	defer stopConsumers()
	var cwg sync.WaitGroup
	goRun(&cwg, func() { r.amqpConsumer(consumers, "qq-consumer", 1, qq) })

	workload, stopWorkload := context.WithTimeout(ctx, time.Duration(r.sched.WorkloadMS)*time.Millisecond)
	defer stopWorkload()
	start := time.Now()
	var pwg sync.WaitGroup
	for i := 0; i < prof.AMQPProducers; i++ {
		name := fmt.Sprintf("qq%d", i+1)
		goRun(&pwg, func() { r.amqpProducer(workload, name, 4+i, qq, prof.AMQPRate) })
	}
	goRun(&pwg, func() { r.metaClient(workload, "meta", 0, r.sched.Seed) })

	nemesisErr := r.nemesis(workload, start)
	<-workload.Done()
	r.finish(ctx, start, &pwg)
	r.rec.add(r.converge(ctx, qq.name))
	stopConsumers()
	cwg.Wait()
	return nemesisErr
}

// convergeDeadline bounds the wait for the replicas to agree after the drain.
const convergeDeadline = 20 * time.Second

// converge waits, after the drain, until every node reports the same term,
// commit index and applied index (applied = commit) for queue's Raft group,
// and records the wait as a drain op of process "replicas": failed when
// they still differ at the deadline (a replica that cannot catch up, or a
// node that never learns the group). It compares indexes, not the entries
// themselves: two logs that agree on the index and term of their last
// committed entry agree on every entry up to it (Raft's log matching).
func (r *run) converge(ctx context.Context, queue string) checker.Op {
	op := checker.Op{Process: "replicas", Op: checker.OpDrain, Queue: queue, Start: now(), DeadlineMS: convergeDeadline.Milliseconds()}
	deadline := time.Now().Add(convergeDeadline)
	var last string
	for {
		var seen []string
		agree := true
		var ref string
		for _, n := range r.nodes {
			st, err := fetchStatus(ctx, n)
			if err != nil {
				seen, agree = append(seen, fmt.Sprintf("n%d: %v", n.ID, err)), false
				continue
			}
			found := false
			for _, g := range st.Groups {
				if g.Kind == "quorum" && g.Queue == queue {
					found = true
					here := fmt.Sprintf("term %d commit %d", g.Term, g.Commit)
					seen = append(seen, fmt.Sprintf("n%d: %s applied %d leader %s", n.ID, here, g.Applied, g.Leader))
					if g.Applied != g.Commit || (ref != "" && here != ref) {
						agree = false
					}
					ref = here
				}
			}
			if !found {
				seen, agree = append(seen, fmt.Sprintf("n%d: no group for %s", n.ID, queue)), false
			}
		}
		last = strings.Join(seen, "; ")
		if agree {
			op.End, op.Outcome, op.Detail = now(), checker.OK, last
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			op.End, op.Outcome, op.Error = now(), checker.Fail, "replicas disagree: "+last
			break
		}
		sleepCtx(ctx, 250*time.Millisecond)
	}
	fmt.Fprintf(r.log, "replicas: %s in %v: %s\n", op.Outcome, time.Duration(op.End-op.Start).Round(time.Millisecond), last)
	return op
}
