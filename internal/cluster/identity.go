package cluster

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/tern-broker/tern/internal/vfs"
)

// IdentityFile, under a node's cluster directory (DATA_DIR/cluster), holds
// the name of the node whose data this is. Raft state is only valid for the
// replica that wrote it: a node started on another node's data directory
// would vote and acknowledge as that node (two replicas claiming one id),
// which breaks Raft's safety. The file turns that mistake into a refusal.
const IdentityFile = "NODE"

// ClaimDir checks that dir belongs to the node named name, or claims it for
// name when the directory holds no identity yet (the node's first start).
func ClaimDir(fsys vfs.FS, dir, name string) error {
	path := filepath.Join(dir, IdentityFile)
	owner, err := readIdentity(fsys, path)
	switch {
	case err == nil && owner == name:
		return nil
	case err == nil:
		return fmt.Errorf("cluster: %s belongs to node %q, not %q: this is another node's data directory (start %q with --node-id %s, or give this node its own --data-dir)",
			dir, owner, name, owner, owner)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("cluster: reading %s: %w", path, err)
	}
	if err := fsys.MkdirAll(dir); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	// Written, synced and renamed, so a crash leaves the name whole or absent.
	return writeSmall(fsys, dir, IdentityFile, name)
}

// Owner returns the node name recorded in dir, or "" when there is none.
func Owner(fsys vfs.FS, dir string) (string, error) {
	name, err := readIdentity(fsys, filepath.Join(dir, IdentityFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return name, err
}

func readIdentity(fsys vfs.FS, path string) (string, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return "", err
	}
	if size > 256 {
		return "", fmt.Errorf("%s is %d bytes: not a node name", path, size)
	}
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	name := strings.TrimSpace(string(buf))
	if name == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return name, nil
}
