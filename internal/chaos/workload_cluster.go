package chaos

import (
	"context"
	"fmt"
	"sync"
	"time"
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
	if err := declareQueues(r.nodes[0], []queueSpec{qq}); err != nil {
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
	stopConsumers()
	cwg.Wait()
	return nemesisErr
}
