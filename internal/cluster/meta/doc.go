// Package meta is the state machine of the cluster's metadata group (Raft
// group 0): every node applies the same definition commands (vhosts,
// exchanges, queues, bindings) in the same order through
// Broker.ApplyReplicated, so a declare committed on one node exists on all.
// Its snapshot is the broker's definitions document
// (Broker.DefinitionsSnapshot) behind a format byte.
//
// An entry is one kind byte and its payload (entry.go): a broker command
// (broker.EncodeCommand) or a barrier, an empty entry a node proposes and
// waits for to know it has applied everything committed before it (the
// start-up catch-up, Node.Start).
package meta
