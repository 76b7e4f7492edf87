package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// docBlock returns the first fenced block of language lang after heading
// in docs/clustering.md.
func docBlock(t *testing.T, doc, heading, lang string) string {
	t.Helper()
	i := strings.Index(doc, heading)
	if i < 0 {
		t.Fatalf("docs/clustering.md has no %q", heading)
	}
	m := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```").FindStringSubmatch(doc[i:])
	if m == nil {
		t.Fatalf("docs/clustering.md has no ```%s block after %q", lang, heading)
	}
	return m[1]
}

// TestClusteringDocRunsAsWritten runs docs/clustering.md's three-node
// example: its shell block (with the binary under test as `tern`), its
// curl, and its pika script, which must consume every message in order.
func TestClusteringDocRunsAsWritten(t *testing.T) {
	python := "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import pika").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3-pika is required in CI: %v", err)
		}
		t.Skip("python3-pika not installed (apt-get install python3-pika)")
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "clustering.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start := docBlock(t, doc, "## Three nodes on one machine", "sh")
	// The example's fixed ports must be free: something else listening
	// there is this machine's business, not a failure of the example.
	for _, port := range regexp.MustCompile(`127\.0\.0\.1:(\d+)`).FindAllStringSubmatch(start, -1) {
		ln, err := net.Listen("tcp", "127.0.0.1:"+port[1])
		if err != nil {
			t.Skipf("the example's port %s is in use on this machine: %v", port[1], err)
		}
		_ = ln.Close()
	}
	dir := t.TempDir()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", start)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(ternBin)+":"+os.Getenv("PATH"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the nodes run in bash's process group
	// Output to a file, not a pipe: the nodes started in the background
	// keep bash's standard output open, and a pipe would wait for them.
	outFile, err := os.Create(filepath.Join(dir, "shell.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer outFile.Close()
	cmd.Stdout, cmd.Stderr = outFile, outFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		time.Sleep(100 * time.Millisecond) // let the killed nodes release their ports before the next test
		if t.Failed() {
			for _, n := range []string{"n1", "n2", "n3"} {
				b, _ := os.ReadFile(filepath.Join(dir, n+".log"))
				t.Logf("%s.log:\n%s", n, b)
			}
		}
	})

	if err := cmd.Wait(); err != nil {
		out, _ := os.ReadFile(outFile.Name())
		t.Fatalf("the example's commands: %v\n%s", err, out)
	}

	// Every node serves, sees the others and knows the metadata leader.
	for _, port := range []string{"15672", "15673", "15674"} {
		deadline := time.Now().Add(60 * time.Second)
		for {
			var st clusterJSON
			ok := false
			if resp, err := httpGet("http://127.0.0.1:" + port + "/api/cluster"); err == nil {
				ok = json.Unmarshal(resp, &st) == nil && len(st.Nodes) == 3 && len(st.Groups) > 0 && st.Groups[0].Leader != ""
				for _, n := range st.Nodes {
					ok = ok && n.Reachable
				}
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the node with HTTP port %s is not serving a formed cluster after 60s: %+v", port, st)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	curl := strings.TrimSpace(docBlock(t, doc, "Look at the cluster from any node", "sh"))
	out, err := exec.Command("bash", "-c", curl).Output()
	if err != nil || !strings.Contains(string(out), `"metadata"`) {
		t.Fatalf("%s: %v\n%s", curl, err, out)
	}

	script := docBlock(t, doc, "Declare a quorum queue on n1", "python")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err = exec.CommandContext(ctx, python, "-c", script).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "consumed 100 messages from n3, in order: True") {
		t.Fatalf("the example's pika script: %v\n%s", err, out)
	}
}

func httpGet(url string) ([]byte, error) {
	c := http.Client{Timeout: 5 * time.Second}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth("guest", "guest") // the example's nodes keep the default guest
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}
