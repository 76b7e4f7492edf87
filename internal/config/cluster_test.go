package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const testSecret = "0123456789abcdef0123456789abcdef"

const threePeers = "n1@127.0.0.1:25672,n2@127.0.0.1:25673,n3@127.0.0.1:25674"

func secretFile(t *testing.T, body string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSingleNodeHasNoClusterSettings(t *testing.T) {
	t.Parallel()
	cfg, err := Load(nil, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cluster.Enabled() {
		t.Fatalf("defaults are in cluster mode: %+v", cfg.Cluster)
	}
}

func TestClusterFlags(t *testing.T) {
	t.Parallel()
	sf := secretFile(t, testSecret+"\n", 0o600)
	cfg, err := Load([]string{"--node-id", "n2", "--cluster-addr", "127.0.0.1:25673", "--peers", threePeers,
		"--cluster-secret-file", sf}, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Cluster
	if c.NodeID != "n2" || c.Addr != "127.0.0.1:25673" || len(c.Peers) != 3 || string(c.Secret) != testSecret {
		t.Fatalf("flags not applied: %+v (secret %q)", c, c.Secret)
	}
	self, ok := c.Self()
	if !ok || self.ID != NodeIDFor("n2") || self.Standby {
		t.Fatalf("self %+v %v", self, ok)
	}
	if w := cfg.Warnings(); len(w) != 0 {
		t.Fatalf("warnings for a 0600 secret file: %v", w)
	}
}

func TestClusterEnvAndTOMLPrecedence(t *testing.T) {
	t.Parallel()
	sf := secretFile(t, "from-the-file-0123456789", 0o644)
	path := filepath.Join(t.TempDir(), "tern.toml")
	body := `
[cluster]
node_id = "n1"
cluster_addr = "127.0.0.1:25672"
peers = ["n1@127.0.0.1:25672", "n2@127.0.0.1:25673", "n3@127.0.0.1:25674/standby"]
secret_file = "` + sf + `"
[cluster.tls]
cert_file = "c.pem"
key_file = "k.pem"
ca_file = "ca.pem"
`
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load([]string{"--config", path}, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.Cluster.Secret) != "from-the-file-0123456789" || cfg.Cluster.TLS.CAFile != "ca.pem" {
		t.Fatalf("TOML not applied: %+v", cfg.Cluster)
	}
	peers, _ := cfg.Cluster.ParsedPeers()
	if len(peers) != 3 || !peers[2].Standby || peers[0].Standby {
		t.Fatalf("peers %+v", peers)
	}
	if w := strings.Join(cfg.Warnings(), ";"); !strings.Contains(w, "readable by other users") {
		t.Fatalf("no warning for a world-readable secret file: %q", w)
	}
	// The environment beats the file, and the secret in the environment
	// beats the file's secret_file.
	cfg, err = Load([]string{"--config", path}, envOf(map[string]string{
		"TERN_NODE_ID": "n2", "TERN_CLUSTER_ADDR": "127.0.0.1:25673", "TERN_CLUSTER_SECRET": testSecret,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cluster.NodeID != "n2" || string(cfg.Cluster.Secret) != testSecret {
		t.Fatalf("environment not applied: %+v", cfg.Cluster)
	}
	// A standby must say so.
	_, err = Load([]string{"--config", path}, envOf(map[string]string{
		"TERN_NODE_ID": "n3", "TERN_CLUSTER_ADDR": "127.0.0.1:25674", "TERN_PEERS": threePeers + "/standby", "TERN_ROLE": "standby",
	}))
	if err != nil {
		t.Fatal(err)
	}
}

func TestClusterValidation(t *testing.T) {
	t.Parallel()
	sf := secretFile(t, testSecret, 0o600)
	short := secretFile(t, "short\n", 0o600)
	empty := secretFile(t, "\n", 0o600)
	base := func(extra ...string) []string {
		args := map[string]string{"--node-id": "n1", "--cluster-addr": "127.0.0.1:25672", "--peers": threePeers, "--cluster-secret-file": sf}
		for i := 0; i+1 < len(extra); i += 2 {
			args[extra[i]] = extra[i+1]
		}
		var out []string
		for k, v := range args {
			if v != "-" {
				out = append(out, k, v)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no node id", base("--node-id", "-"), "node_id"},
		{"bad node id", base("--node-id", "n 1"), `node_id "n 1"`},
		{"no cluster addr", base("--cluster-addr", "-"), "cluster_addr"},
		{"cluster addr without host", base("--cluster-addr", ":25672"), "has no host"},
		{"cluster addr port 0", base("--cluster-addr", "127.0.0.1:0"), "needs a port"},
		{"no secret", base("--cluster-secret-file", "-"), "shared secret is required"},
		{"short secret", base("--cluster-secret-file", short), "at least 16"},
		{"empty secret file", base("--cluster-secret-file", empty), "is empty"},
		{"missing secret file", base("--cluster-secret-file", "/nonexistent/secret"), "secret file"},
		{"no peers", base("--peers", "-"), "peers"},
		{"self not in peers", base("--peers", "n2@127.0.0.1:25673,n3@127.0.0.1:25674"), `does not list this node "n1"`},
		{"self at another address", base("--cluster-addr", "127.0.0.1:25600"), "must be the same"},
		{"duplicate name", base("--peers", threePeers+",n2@127.0.0.1:25675"), `"n2" is listed twice`},
		{"duplicate address", base("--peers", threePeers+",n4@127.0.0.1:25674"), "same address"},
		{"peer without @", base("--peers", threePeers+",n4"), "not name@host:port"},
		{"peer with bad role", base("--peers", threePeers+",n4@127.0.0.1:25675/leader"), `role "leader"`},
		{"bad role", base("--role", "leader"), `role "leader"`},
		{"standby role, voter entry", base("--role", "standby"), "every node must be given the same membership"},
		{"no voter", base("--peers", "n1@127.0.0.1:25672/standby", "--role", "standby"), "no voter"},
	} {
		_, err := Load(tc.args, envOf(nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
	for _, tc := range []struct{ name, tls, want string }{
		{"cert without key", "cert_file = \"c\"\nca_file = \"ca\"", "both cert_file and key_file"},
		{"cert without ca", "cert_file = \"c\"\nkey_file = \"k\"", "needs ca_file"},
		{"ca alone", "ca_file = \"ca\"", "without cert_file"},
	} {
		_, err := loadFile(t, "[cluster]\nnode_id = \"n1\"\ncluster_addr = \"127.0.0.1:25672\"\npeers = [\"n1@127.0.0.1:25672\"]\nsecret_file = \""+sf+"\"\n[cluster.tls]\n"+tc.tls+"\n")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
}

func TestNodeIDForIsStableAndDistinct(t *testing.T) {
	t.Parallel()
	// The mapping is part of the on-disk format (replica ids in every
	// group's Raft state): it must never change.
	if got := NodeIDFor("n1"); got != 0x08b37b07b558d4c0 {
		t.Fatalf("NodeIDFor(n1) = %#x: the name→id mapping changed, which would orphan every cluster's Raft state", got)
	}
	seen := map[uint64]string{}
	for i := 0; i < 10000; i++ {
		name := "node-" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strconv.Itoa(i)
		id := NodeIDFor(name)
		if other, dup := seen[id]; dup {
			t.Fatalf("%q and %q collide", other, name)
		}
		seen[id] = name
	}
}
