package server

import (
	"path/filepath"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/cluster/solo"
	"github.com/tern-broker/tern/internal/vfs"
)

// soloDir is where a single node keeps its quorum queues' Raft log.
func soloDir(dataDir string) string { return filepath.Join(dataDir, "quorum") }

// soloReplication gives a single node (no cluster settings) quorum queues:
// one-voter Raft groups in DATA_DIR/quorum, opened with the first quorum
// queue (internal/cluster/solo). Definitions stay in the store.
func (s *Server) soloReplication() broker.Replication {
	s.solo = solo.New(solo.Config{Dir: soloDir(s.cfg.DataDir), FS: vfs.Default, Logger: s.log, Clock: s.cfg.Clock})
	return broker.Replication{Quorum: s.solo}
}

// removeSoloOrphans drops the Raft state of quorum queues deleted just
// before a crash, once recovery has opened every live queue's group.
func (s *Server) removeSoloOrphans() {
	if s.solo == nil {
		return
	}
	if n, err := s.solo.RemoveOrphans(); err != nil {
		s.log.Warn("could not remove the Raft state of deleted quorum queues", "err", err)
	} else if n > 0 {
		s.log.Info("removed the Raft state of deleted quorum queues", "groups", n)
	}
}

// closeSolo stops the single node's quorum groups, after the clients (their
// last acks and publishes reach the groups first); nil without them.
func (s *Server) closeSolo() error {
	if s.solo == nil {
		return nil
	}
	return s.solo.Close()
}
