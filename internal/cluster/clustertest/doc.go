// Package clustertest starts an in-process test cluster: N raftnode Hosts
// on a fault-injecting memnet Network, each node with a crashable in-memory
// file system (vfs.MemFS), time on a clock.Fake that a driver goroutine
// advances one tick at a time, and a replicated list (ListSM) as the
// state machine, so divergence between replicas is checkable entry by
// entry.
//
// A node's storage comes from Options.Storage, given the node's file
// system: the default keeps raftnode.MemoryStorage values per node, which
// survive a Crash whole (every Save is "durable" at once); WALStorage
// opens one node-wide wal.WAL per node on its file system, which then
// meets the file system as a crash left it (CrashWith takes an image made
// at an exact file operation by WALStorage's fault injector), and Restart
// restarts the groups the WAL recovered.
package clustertest
