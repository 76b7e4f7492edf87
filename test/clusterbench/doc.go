// Command clusterbench measures a three-node Tern cluster against a single
// Tern node (and, where given, a three-node RabbitMQ cluster) for the
// "Cluster" section of docs/performance.md:
//
//   - throughput: `tern bench --scenario persistent` (1 KiB persistent
//     messages, confirms with 1,000 in flight, manual acks) into a quorum
//     queue of 3 replicas, publisher on one node and consumer on the next,
//     against a durable classic queue on a single node, interleaved in the
//     same run; with the brokers' CPU per message (from /proc/PID/stat) and
//     the WAL's fsyncs (from /metrics); a quorum run that saw leader changes
//     beyond the new queue's first election (tern_raft_leader_changes_total)
//     is flagged ⚠ (node logs under -dir, at -log-level info, name them);
//   - failover: kill -9 of a quorum queue's leader → the first confirm from
//     the new one, over N trials, the killed node restarted between them
//     (the method of TestQuorumQueueSurvivesKill9OfItsLeader);
//   - idle: 1,000 idle quorum queues: each node's CPU over 30 s and RSS per
//     queue.
//
// Every Tern node is a setsid daemon (its own session, as `setsid tern
// server … &` would start it) on fixed loopback ports with its own data
// directory under -dir; RabbitMQ nodes come from rabbitmq-cluster.sh.
//
//	go build -o /tmp/tern ./cmd/tern
//	test/clusterbench/rabbitmq-cluster.sh start      # optional
//	go run ./test/clusterbench -tern /tmp/tern -rabbit /tmp/clusterbench-rabbitmq
//
// It is a benchmark, not a test: it prints what it measured and fails only
// when a broker cannot be started or a run loses messages.
package main
