package clustertest

import (
	"log/slog"
	"testing"

	"github.com/tern-broker/tern/internal/cluster/wal"
)

// eachStorage runs a scenario on each node storage: raftnode's
// MemoryStorage (every save durable at once, kept whole across a crash)
// and the node-wide WAL on the crashable file system, where a crash keeps
// only what was fsynced plus a torn half of what was not.
func eachStorage(t *testing.T, run func(t *testing.T, o Options)) {
	t.Run("storage=memory", func(t *testing.T) { run(t, Options{}) })
	t.Run("storage=wal", func(t *testing.T) { run(t, walOptions(t, nil)) })
}

// walOptions are Options with a WALStorage on small segments, so that
// scenarios roll, rewrite and delete segments; ws, if given, is set to
// the storage. A Crash keeps half of every file's unsynced bytes.
func walOptions(t testing.TB, ws **WALStorage) Options {
	s := NewWALStorage(wal.Options{
		SegmentSize: 4 << 10,
		MaxSegments: 3,
		Logger:      slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if ws != nil {
		*ws = s
	}
	return Options{
		Storage:  s.Open,
		TornTail: func(_ string, unsynced int) int { return unsynced / 2 },
	}
}
