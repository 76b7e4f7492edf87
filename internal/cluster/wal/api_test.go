package wal_test

import (
	"github.com/tern-broker/tern/internal/cluster/raftnode"
	"github.com/tern-broker/tern/internal/cluster/wal"
)

// The node drives every group through raftnode.Storage.
var _ raftnode.Storage = (*wal.GroupStorage)(nil)
