package chaos

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// mountTmpfs mounts a tmpfs of size bytes on dir. Inside the sandbox's
// private mount namespace the mount vanishes when the run ends, whatever
// way it ends.
func mountTmpfs(dir string, size int64) error {
	if err := RequireSandbox(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("chaos: mount tmpfs on %s: %v: %s", dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// mountDataFS gives a node a small file system of its own on dir: an ext4
// image on a loop device (real fsync, real ENOSPC) when mkfs.ext4 exists
// and a loop device is free, else a tmpfs. The loop device is attached
// with autoclear, so it is released when the mount goes, and the mount goes
// with the sandbox's mount namespace. It says which it made.
func mountDataFS(dir, image string, size int64) (string, error) {
	if err := RequireSandbox(); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if _, err := exec.LookPath("mkfs.ext4"); err == nil {
		if err := mountExt4(dir, image, size); err == nil {
			return "ext4 on a loop device", nil
		}
		_ = os.Remove(image)
	}
	if err := mountTmpfs(dir, size); err != nil {
		return "", err
	}
	return "tmpfs", nil
}

func mountExt4(dir, image string, size int64) error {
	f, err := os.Create(image)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// -m 0: no blocks reserved for root (the broker runs as root here).
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-m", "0", image).CombinedOutput(); err != nil {
		return fmt.Errorf("chaos: mkfs.ext4: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if out, err := exec.Command("mount", "-o", "loop", image, dir).CombinedOutput(); err != nil {
		return fmt.Errorf("chaos: mount -o loop: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ballastPath is the file a disk-full fault fills the node's disk with.
func ballastPath(fsDir string) string { return filepath.Join(fsDir, "ballast") }

// fillDisk writes a ballast file until free bytes remain on fsDir's file
// system (0: every block taken, so the broker's writes fail with ENOSPC).
// It returns the bytes written.
func fillDisk(fsDir string, free int64) (int64, error) {
	if err := RequireSandbox(); err != nil {
		return 0, err
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(fsDir, &st); err != nil {
		return 0, fmt.Errorf("chaos: statfs %s: %w", fsDir, err)
	}
	avail := int64(st.Bavail) * st.Bsize
	want := avail - free
	if want <= 0 {
		return 0, nil
	}
	f, err := os.OpenFile(ballastPath(fsDir), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for n < want {
		chunk := buf[:min(int64(len(buf)), want-n)]
		w, err := f.Write(chunk)
		n += int64(w)
		if errors.Is(err, syscall.ENOSPC) {
			break // the broker took some meanwhile: full is full
		}
		if err != nil {
			return n, fmt.Errorf("chaos: ballast: %w", err)
		}
	}
	return n, nil
}

// freeDisk removes the ballast.
func freeDisk(fsDir string) error {
	if err := RequireSandbox(); err != nil {
		return err
	}
	if err := os.Remove(ballastPath(fsDir)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("chaos: remove ballast: %w", err)
	}
	return nil
}
