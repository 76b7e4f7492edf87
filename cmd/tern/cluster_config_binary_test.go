package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServerRefusesBadClusterSettings: a cluster setting the node cannot
// honour stops `tern server` at start-up (exit 2) with the reason.
func TestServerRefusesBadClusterSettings(t *testing.T) {
	t.Parallel()
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	peers := "n1@127.0.0.1:25672,n2@127.0.0.1:25673,n3@127.0.0.1:25674"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no secret", []string{"--node-id", "n1", "--cluster-addr", "127.0.0.1:25672", "--peers", peers}, "shared secret is required"},
		{"self missing", []string{"--node-id", "n4", "--cluster-addr", "127.0.0.1:25675", "--peers", peers, "--cluster-secret-file", secret}, `does not list this node "n4"`},
		{"address mismatch", []string{"--node-id", "n1", "--cluster-addr", "127.0.0.1:25600", "--peers", peers, "--cluster-secret-file", secret}, "must be the same"},
		{"name twice", []string{"--node-id", "n1", "--cluster-addr", "127.0.0.1:25672", "--peers", peers + ",n1@127.0.0.1:25680", "--cluster-secret-file", secret}, `"n1" is listed twice`},
		{"peers without node id", []string{"--peers", peers}, "node_id"},
	} {
		code, out := runTern(t, "", serverArgs(t, tc.args...)...)
		if code != 2 || !strings.Contains(out, tc.want) {
			t.Errorf("%s: exit %d, output %q; want exit 2 mentioning %q", tc.name, code, out, tc.want)
		}
	}
	// Another node's data directory: refused at start-up, naming its owner.
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "cluster"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cluster", "NODE"), []byte("n2\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	args := []string{"server", "--data-dir", dir, "--amqp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--mqtt-addr", "", "--mqtt-ws-addr", ""}
	code, out := runTern(t, "", append(args, "--node-id", "n1", "--cluster-addr", "127.0.0.1:25672", "--peers", peers, "--cluster-secret-file", secret)...)
	if code != 1 || !strings.Contains(out, `belongs to node \"n2\", not \"n1\"`) {
		t.Errorf("n1 on n2's data directory: exit %d, %q", code, out)
	}
	// The same directory without the cluster settings: refused too.
	code, out = runTern(t, "", args...)
	if code != 1 || !strings.Contains(out, `holds cluster node \"n2\"'s data`) {
		t.Errorf("a cluster node's directory as a single node: exit %d, %q", code, out)
	}

	_, out = runTern(t, "", "server", "--help")
	for _, flag := range []string{"-node-id", "-cluster-addr", "-peers", "-cluster-secret-file", "-role"} {
		if !strings.Contains(out, flag) {
			t.Errorf("server --help lacks %s", flag)
		}
	}
}
