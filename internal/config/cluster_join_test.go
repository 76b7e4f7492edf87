package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestClusterJoin(t *testing.T) {
	t.Parallel()
	sf := secretFile(t, testSecret+"\n", 0o600)
	base := []string{"--node-id", "n4", "--cluster-addr", "127.0.0.1:25675", "--peers", threePeers + ",n4@127.0.0.1:25675", "--cluster-secret-file", sf}
	cfg, err := Load(append(base, "--join"), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Cluster.Join {
		t.Fatal("--join not read")
	}
	if cfg, err = Load(base, envOf(nil)); err != nil || cfg.Cluster.Join {
		t.Fatalf("join without --join: %v %v", cfg.Cluster.Join, err)
	}
	path := filepath.Join(t.TempDir(), "tern.toml")
	toml := "[cluster]\nnode_id = \"n4\"\ncluster_addr = \"127.0.0.1:25675\"\njoin = true\npeers = [\"n1@127.0.0.1:25672\", \"n4@127.0.0.1:25675\"]\nsecret_file = \"" + sf + "\"\n"
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err = Load([]string{"--config", path}, envOf(nil)); err != nil || !cfg.Cluster.Join {
		t.Fatalf("join = true in TOML: %v %v", cfg.Cluster.Join, err)
	}
	if !(Cluster{Join: true}).Enabled() {
		t.Fatal("join alone is not cluster mode")
	}
}
