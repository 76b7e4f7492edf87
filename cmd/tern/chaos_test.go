package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/chaos"
	"github.com/tern-broker/tern/internal/chaos/checker"
)

// ternChaos runs the built binary's chaos command.
func ternChaos(t *testing.T, timeout time.Duration, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, ternBin, append([]string{"chaos"}, args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("tern chaos %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

func TestChaosBadInputExitsTwoWithOneLine(t *testing.T) {
	dir := t.TempDir()
	garbled := filepath.Join(dir, "garbled.json")
	if err := os.WriteFile(garbled, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := chaos.Generate(5, 1, "ci")
	if err != nil {
		t.Fatal(err)
	}
	s.Faults[0].Kind = "meteor"
	unknown := filepath.Join(dir, "unknown.json")
	b, _ := os.ReadFile(mustSave(t, s, dir))
	if err := os.WriteFile(unknown, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--seed", "twelve"}, `--seed "twelve" is not a number`},
		{[]string{"run", "--schedule", garbled}, "bad schedule"},
		{[]string{"run", "--schedule", unknown}, "unknown fault kind"},
		{[]string{"run", "--profile", "forever"}, "unknown profile"},
		{[]string{"run", "--nodes", "2"}, "--nodes must be 1, 3 or 5"},
		{[]string{"run", "--bin", filepath.Join(dir, "nowhere")}, "is not an executable file"},
		{[]string{"check", filepath.Join(dir, "nowhere")}, "no such file"},
		{[]string{"meteor"}, "unknown command"},
	}
	for _, c := range cases {
		_, stderr, code := ternChaos(t, 30*time.Second, c.args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 2 || !strings.Contains(lines[0], c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q on the first line", c.args, code, stderr, c.want)
		}
	}
}

func mustSave(t *testing.T, s chaos.Schedule, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "schedule.json")
	// Save validates nothing, so a bad fault kind can be written for the test.
	if err := s.Save(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// sandboxOrSkip skips, saying why, where the chaos sandbox cannot be made:
// not root, no unshare or ip, or namespaces refused (a container without
// CAP_SYS_ADMIN).
func sandboxOrSkip(t *testing.T) {
	t.Helper()
	if err := chaos.SandboxPreflight(); err != nil {
		t.Skip(err)
	}
	if out, err := exec.Command("unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "true").CombinedOutput(); err != nil {
		t.Skipf("cannot create network, mount and pid namespaces: %v %s", err, out)
	}
}

// ciSeed is a seed CI runs because it once found a bug (docs/reliability.md,
// Findings): the same seed gives the same fault schedule, so the run that
// failed is run again on every CI pass (up to timing).
type ciSeed struct {
	seed uint64
	why  string
}

// ciSeedsOneNode are TestChaosCIProfileOneNode's seeds, about a minute each.
var ciSeedsOneNode = []ciSeed{
	{2, "stream offsets skipped where a full disk refused writes (fixed: a refused write's offsets go to the next appends)"},
	{146, "a torn tail cut a confirmed message waiting in the MQTT subscriber's session queue and the drain waited for it (fixed in the runner)"},
}

// ciSeedsThreeNodes are TestChaosCIProfileThreeNodes's seeds. The
// cluster's ci list has grown since they failed (bandwidth, delay, clock
// skew), so each is replayed from the schedule it failed with, saved in
// testdata/chaos/seedSEED-nodes3.json.
var ciSeedsThreeNodes = []ciSeed{
	{114, "quorum queue: first deliveries out of publish order (a cancelled consumer's messages came back unmarked; fixed)"},
	{160, "quorum queue: 40 returned messages reordered behind a late cancel (marked since; retries now go out once a leader is known)"},
}

// TestChaosCIProfileOneNode runs the short CI campaign on one node (kill -9,
// torn tail, pause, disk full, each once, seed-ordered) for each seed of
// ciSeedsOneNode, and fails on any failed verdict: a lost or unexpected
// message, an order or stream-offset violation, a recovery or drain past
// its deadline, a non-linearizable metadata history. A failure reproduces
// with `tern chaos run --seed SEED --profile ci`.
func TestChaosCIProfileOneNode(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the chaos CI profile takes about a minute per seed")
	}
	sandboxOrSkip(t)
	for _, cs := range ciSeedsOneNode {
		t.Run(fmt.Sprintf("seed=%d", cs.seed), func(t *testing.T) {
			t.Logf("seed %d: %s", cs.seed, cs.why)
			chaosOneNode(t, cs.seed)
		})
	}
}

// TestChaosMQTTQoS2ExactlyOnce runs a one-node CI campaign on seed 3,
// whose exactly-once verdict once failed: a QoS 2 message a
// persistent-session subscriber received came again under a new packet id
// after a reconnect or a kill -9 (docs/reliability.md, Findings; fixed: a
// session's in-flight messages keep their packet ids, internal/mqtt
// inflight.go).
func TestChaosMQTTQoS2ExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the chaos CI profile takes about a minute")
	}
	sandboxOrSkip(t)
	chaosOneNode(t, 3)
}

// chaosOneNode runs the one-node CI campaign of seed, with the whole
// workload (MQTT QoS 2 included).
func chaosOneNode(t *testing.T, seed uint64) {
	out := t.TempDir()
	seedArg := fmt.Sprint(seed)
	stdout, stderr, code := ternChaos(t, 4*time.Minute, "run", "--seed", seedArg, "--profile", "ci", "--out", out)
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	if !strings.HasPrefix(stdout, "seed "+seedArg+"\n") {
		t.Errorf("the seed is not printed first")
	}
	if code != 0 || !regexp.MustCompile(`(?m)^[1-9][0-9]* passed, 0 failed$`).MatchString(stdout) {
		t.Fatalf("exit %d; see %s (history.jsonl, report.json, node1/node.log, node1/data-kept)", code, out)
	}
	for _, f := range []string{"history.jsonl", "schedule.json", "report.json", "node1/node.log"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	wantFaults(t, stdout, map[string]int{"kill": 1, "torn-tail": 1, "pause": 1, "disk-full": 1})
	// A re-check of the saved history gives the same verdicts.
	again, _, code := ternChaos(t, time.Minute, "check", out)
	if code != 0 || !strings.Contains(again, " passed, 0 failed") {
		t.Fatalf("chaos check: exit %d\n%s", code, again)
	}
	// Nothing is left behind: no mount, loop device or process of the run.
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), out) {
		t.Fatalf("a mount of the run is still there:\n%s", mounts)
	}
	if img := filepath.Join(out, "node1", "disk.img"); fileExists(img) {
		if loops, _ := exec.Command("losetup", "-j", img).CombinedOutput(); len(bytes.TrimSpace(loops)) > 0 {
			t.Fatalf("a loop device still holds %s: %s", img, loops)
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(out)) {
			t.Fatalf("a process of the run is still alive: %s %q", p, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		}
	}
}

// TestChaosCIProfileThreeNodes runs the short CI campaign on a 3-node
// cluster (nodes on 127.0.0.11-13, a quorum queue, producers and a consumer
// reconnecting to seed-chosen nodes): a kill -9, a kill -9 of the queue's
// leader, a kill -9 of every node at once, a pause, two partitions and packet loss on one link, seed-ordered,
// then a drain and a check that every replica agrees, for each seed of
// ciSeedsThreeNodes, replayed from its saved schedule. It fails on any
// failed verdict. Reproduce a failure with `tern chaos run --schedule
// cmd/tern/testdata/chaos/seedSEED-nodes3.json`.
func TestChaosCIProfileThreeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the 3-node chaos CI profile takes about a minute per seed")
	}
	// It ran on request only while the quorum-queue order finding
	// (docs/reliability.md, seeds 114, 122, 137: a cancelled consumer's
	// messages returned unmarked) failed it by chance; that is fixed.
	sandboxOrSkip(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft (nftables) for partitions and packet loss on lo")
	}
	for _, cs := range ciSeedsThreeNodes {
		t.Run(fmt.Sprintf("seed=%d", cs.seed), func(t *testing.T) {
			t.Logf("seed %d: %s", cs.seed, cs.why)
			chaosThreeNodes(t, cs.seed)
		})
	}
}

func chaosThreeNodes(t *testing.T, seed uint64) {
	out := t.TempDir()
	sched := filepath.Join("testdata", "chaos", fmt.Sprintf("seed%d-nodes3.json", seed))
	stdout, stderr, code := ternChaos(t, 5*time.Minute, "run", "--schedule", sched, "--out", out)
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	if code != 0 || !regexp.MustCompile(`(?m)^[1-9][0-9]* passed, 0 failed$`).MatchString(stdout) {
		t.Fatalf("exit %d; see %s (history.jsonl, report.json, node*/node.log, node*/data-kept)", code, out)
	}
	wantFaults(t, stdout, map[string]int{"kill": 1, "kill-leader": 1, "kill-all": 1, "pause": 1, "partition": 2, "loss": 1})
	if !strings.Contains(stdout, "replicas: ok") {
		t.Errorf("the replicas did not agree after the drain")
	}
	for n := 1; n <= 3; n++ {
		if _, err := os.Stat(filepath.Join(out, fmt.Sprintf("node%d", n), "node.log")); err != nil {
			t.Errorf("missing node %d's log: %v", n, err)
		}
	}
	// The nodes really were a cluster on their own addresses.
	if b, _ := os.ReadFile(filepath.Join(out, "node2", "tern.toml")); !strings.Contains(string(b), "127.0.0.12:5672") {
		t.Errorf("node 2 does not listen on 127.0.0.12: %s", b)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(out)) {
			t.Fatalf("a process of the run is still alive: %s %q", p, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestChaosHooksSaysHowItWasBuilt: the test binary is built without -tags
// chaos, so `tern chaos hooks` exits 1 and says how to get the hooks.
func TestChaosHooksSaysHowItWasBuilt(t *testing.T) {
	stdout, _, code := ternChaos(t, 30*time.Second, "hooks")
	if code != 1 || !strings.Contains(stdout, "go build -tags chaos") {
		t.Fatalf("exit %d, stdout %q; want 1 and how to build with -tags chaos", code, stdout)
	}
}

// TestChaosWithoutUnshareExitsTwo: a run where unshare cannot be found
// is bad input: one line, exit 2, before anything is made.
func TestChaosWithoutUnshareExitsTwo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: the root check comes first (and is what a non-root run reports)")
	}
	out := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(ternBin, "chaos", "run", "--seed", "1", "--out", out)
	cmd.Env = append(os.Environ(), "PATH="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(stderr.String(), "needs unshare") || strings.Count(stderr.String(), "\n") != 1 {
		t.Fatalf("exit %v, stderr %q; want 2 and one line saying unshare is needed", err, stderr.String())
	}
	if fileExists(out) {
		t.Fatalf("%s was made", out)
	}
}

// TestChaosHarnessKilledLeavesNothing kills -9 the tern that started a
// run once its node is up: unshare dies with it (parent-death signal),
// the runner with unshare (--kill-child), and the node, its mount and its
// loop device with the runner's namespaces. Nothing of the run may be
// left after a few seconds.
func TestChaosHarnessKilledLeavesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a chaos run")
	}
	sandboxOrSkip(t)
	out := t.TempDir()
	cmd := exec.Command(ternBin, "chaos", "run", "--seed", "1", "--profile", "ci", "--mqtt-qos2=false", "--out", out)
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	up := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "node(s) up") {
				close(up)
				break
			}
		}
		io.Copy(io.Discard, pipe)
	}()
	select {
	case <-up:
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the node did not come up within 90 s")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	left := func() string {
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(out)) {
				return fmt.Sprintf("process %s %q", p, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
			}
		}
		if mounts, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(mounts, []byte(out)) {
			return "a mount under " + out
		}
		if loops, _ := exec.Command("losetup", "-j", filepath.Join(out, "node1", "disk.img")).CombinedOutput(); len(bytes.TrimSpace(loops)) > 0 {
			return "a loop device: " + string(loops)
		}
		return ""
	}
	deadline := time.Now().Add(15 * time.Second)
	for what := left(); what != ""; what = left() {
		if time.Now().After(deadline) {
			t.Fatalf("15 s after the harness was killed, still there: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestChaosSummaryNamesSkippedFaults: a fault the run could not inject is
// in the summary with its reason, apart from the faults injected.
func TestChaosSummaryNamesSkippedFaults(t *testing.T) {
	rep := &checker.Report{Passed: 1, Stats: checker.Stats{
		Faults:      map[string]int{"kill": 1},
		Recovery:    map[string]checker.Recovery{"kill": {Count: 1, P50MS: 12, MaxMS: 12}},
		Skipped:     map[string]int{"delay": 2},
		SkipReasons: map[string]string{"delay": "the nodes' tern was built without -tags chaos"},
	}}
	var b bytes.Buffer
	if code := printReport(&b, rep, "DIR"); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"faults: kill×1 (recovery p50 12 ms, max 12 ms)\n", "skipped: delay×2: the nodes' tern was built without -tags chaos\n", "1 passed, 0 failed\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}

// wantFaults checks that every scheduled fault was injected (the summary's
// "faults: KIND×N" counts) or, at the end of the workload, reported as not
// reached ("workload ended before the KIND"): the faults before it took
// longer than planned, as a restart does on a loaded machine. A fault that
// failed, or vanished without a word, fails the test.
func wantFaults(t *testing.T, stdout string, want map[string]int) {
	t.Helper()
	got := map[string]int{}
	for _, line := range strings.Split(stdout, "\n") {
		if rest, ok := strings.CutPrefix(line, "faults:"); ok {
			for _, m := range regexp.MustCompile(`(\S+)×(\d+)`).FindAllStringSubmatch(rest, -1) {
				n, _ := strconv.Atoi(m[2])
				got[m[1]] += n
			}
		}
	}
	late := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^workload ended before the (\S+) at`).FindAllStringSubmatch(stdout, -1) {
		late[m[1]]++
	}
	for kind, n := range want {
		if got[kind]+late[kind] != n {
			t.Errorf("%s: %d injected, %d not reached before the workload ended; the schedule has %d", kind, got[kind], late[kind], n)
		} else if late[kind] > 0 {
			t.Logf("%s: %d of %d not reached before the workload ended (a slow machine)", kind, late[kind], n)
		}
	}
}
