// Package chaos runs Jepsen-style fault campaigns against real `tern
// server` processes: `tern chaos run` and `tern chaos check`.
//
// A run is generated from a seed before it starts ([Generate], saved as
// schedule.json, replayed with --schedule): the faults, their times, their
// targets and parameters. The runner then
//
//   - re-executes itself under `unshare --net --mount --pid --fork` so the
//     whole run lives in a network namespace whose only interface is lo, a
//     private mount namespace (the nodes' small file systems vanish with
//     it) and a pid namespace whose pid 1 is the runner (the nodes die with
//     it); [RequireSandbox] makes every function that starts a node or
//     injects a fault refuse to run where any other interface exists;
//   - starts the nodes, node n listening on 127.0.0.(10+n), each on an ext4
//     loop image (a tmpfs when no loop device is free) so a ballast file
//     can fill its disk;
//   - runs the workload from clients on 127.0.0.21-29. One node: AMQP
//     producers with publisher confirms to a durable queue and to a
//     stream, an MQTT QoS 1 producer to a topic with a persistent-session
//     subscriber, reconnecting consumers, and a metadata client declaring,
//     deleting and checking scratch queues. 3 or 5 nodes (a cluster, each
//     node's cluster port on its own address): AMQP producers with
//     confirms and a consumer on a quorum queue, and the metadata client,
//     each (re)connecting to seed-chosen nodes;
//   - injects the faults (the nemesis): kill -9 and restart, a torn tail
//     while the node is down, SIGSTOP/SIGCONT, a full disk (one node); on
//     3 or 5 nodes kill -9, kill -9 of the quorum queue's leader (found with
//     GET /api/cluster), SIGSTOP/SIGCONT, nft partitions and packet loss by
//     node address pair ([NFTRules]), bandwidth limits per link (tc htb
//     with u32 filters on lo, [TCBatch]), and — through hooks compiled in
//     only with -tags chaos, read from each node's TERN_CHAOS_CONTROL
//     directory (hooks.go) — per-link delay in the cluster transport and
//     a broker clock offset (also on one node, in the long profile). A
//     fault that cannot run here (no htb/u32, no hooks in the nodes'
//     binary) is recorded as skipped with its reason, never silently;
//   - records every operation as a JSON line in history.jsonl, drains (on
//     a cluster it then waits for every node to report the same term,
//     commit and applied index for the queue's group), and hands the
//     history to package checker, which writes report.json.
//
// Every loop is bounded by the run's context deadline; the run stops by
// itself. Concurrency: each workload client is one goroutine owning its
// connection; the recorder and the tracker are mutex-guarded; the nemesis
// is one goroutine; Run joins them all before checking.
//
// Not done: torn tails and full disks on a cluster, streams and MQTT on a
// cluster (they stay on the node that made them), overlapping faults, and
// comparing replicas' entries byte for byte (only their indexes are
// compared). The delay hook delays whole write batches (a batch waits
// until its oldest frame is the delay old), not each frame exactly.
package chaos
