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
//   - runs the workload from clients on 127.0.0.21-29: AMQP producers with
//     publisher confirms to a durable queue (a quorum queue on 3 or 5
//     nodes) and to a stream, an MQTT QoS 1 producer to a topic with a
//     persistent-session subscriber, reconnecting consumers, and a
//     metadata client declaring, deleting and checking scratch queues;
//   - injects the faults (the nemesis): kill -9 and restart, a torn tail
//     while the node is down, SIGSTOP/SIGCONT, a full disk, and on 3 or 5
//     nodes nft partitions and packet loss by node address pair ([NFTRules]);
//   - records every operation as a JSON line in history.jsonl, drains, and
//     hands the history to package checker, which writes report.json.
//
// Every loop is bounded by the run's context deadline; the run stops by
// itself. Concurrency: each workload client is one goroutine owning its
// connection; the recorder and the tracker are mutex-guarded; the nemesis
// is one goroutine; Run joins them all before checking.
//
// Not done: bandwidth limits (tc), delay and clock skew (they need hooks in
// the broker behind a build tag), MQTT QoS 2 in the workload (the checker
// judges it), and running 3 or 5 nodes, which waits for the cluster flags
// of issue 12 ([ClusterSupported] asks the binary).
package chaos
