package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestClusteringDocAddsAndRemovesNodes runs docs/clustering.md's
// "Adding and removing nodes" commands against its three-node example:
// n4 joins and becomes a voter, then n3 is removed and exits.
func TestClusteringDocAddsAndRemovesNodes(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "clustering.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start := docBlock(t, doc, "## Three nodes on one machine", "sh")
	add := docBlock(t, doc, "## Adding and removing nodes", "sh")
	remove := docBlock(t, doc, "Remove a node, from any", "sh")
	for _, port := range regexp.MustCompile(`127\.0\.0\.1:(\d+)`).FindAllStringSubmatch(start+add, -1) {
		ln, err := net.Listen("tcp", "127.0.0.1:"+port[1])
		if err != nil {
			t.Skipf("the example's port %s is in use on this machine: %v", port[1], err)
		}
		_ = ln.Close()
	}
	dir := t.TempDir()
	run := func(script string) {
		t.Helper()
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(ternBin)+":"+os.Getenv("PATH"))
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		out, err := os.Create(filepath.Join(dir, "shell.out"))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pgid := cmd.Process.Pid
		t.Cleanup(func() {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			time.Sleep(100 * time.Millisecond)
		})
		if err := cmd.Wait(); err != nil {
			b, _ := os.ReadFile(out.Name())
			t.Fatalf("%s: %v\n%s", script, err, b)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range []string{"n1", "n2", "n3", "n4"} {
				b, _ := os.ReadFile(filepath.Join(dir, n+".log"))
				t.Logf("%s.log:\n%s", n, b)
			}
		}
	})
	status := func(port string) (clusterJSON, bool) {
		var st clusterJSON
		b, err := httpGet("http://127.0.0.1:" + port + "/api/cluster")
		return st, err == nil && json.Unmarshal(b, &st) == nil
	}
	waitStatus := func(port, what string, ok func(clusterJSON) bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			st, got := status(port)
			if got && ok(st) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after 60s (port %s): %+v", what, port, st)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	role := func(st clusterJSON, name string) string {
		for _, n := range st.Nodes {
			if n.Name == name {
				return n.Role
			}
		}
		return ""
	}

	run(start)
	waitStatus("15672", "a formed cluster", func(st clusterJSON) bool {
		return len(st.Nodes) == 3 && len(st.Groups) > 0 && st.Groups[0].Leader != ""
	})
	run(add)
	waitStatus("15672", "n4 a voter of the metadata group", func(st clusterJSON) bool {
		return role(st, "n4") == "voter" && slices.Contains(st.Groups[0].Voters, "n4")
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:5675", time.Second)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("n4 does not serve AMQP on 5675: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	run(remove)
	waitStatus("15675", "n3 removed, seen from n4", func(st clusterJSON) bool {
		return role(st, "n3") == "removed" && !slices.Contains(st.Groups[0].Voters, "n3")
	})
	deadline = time.Now().Add(20 * time.Second)
	for {
		if _, up := status("15674"); !up {
			break // n3 stopped
		}
		if time.Now().After(deadline) {
			t.Fatal("the removed n3 still serves its HTTP port")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
