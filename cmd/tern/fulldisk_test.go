package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Full-disk tests: the real binary on a small real file system (a tmpfs the
// test mounts), filled by a publisher with confirms until the broker refuses
// (nacks or blocks), then space freed, more publishes, kill -9, restart:
// every message that was confirmed must be there exactly once.
//
// Mounting needs root (CAP_SYS_ADMIN). Outside CI a test that cannot mount
// skips and says why; in CI (env CI set) it fails, because there these
// tests are the only proof that a full disk loses no confirmed message.

// mountSmallFS mounts a tmpfs of the given size ("24m") on a new directory
// and unmounts it when the test ends.
func mountSmallFS(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := "cannot mount a tmpfs for the full-disk test (needs root): " + strings.TrimSpace(string(out))
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fillFile writes n bytes to path and syncs it: space the test can free.
func fillFile(t *testing.T, path string, n int) {
	t.Helper()
	if err := os.WriteFile(path, make([]byte, n), 0o600); err != nil {
		t.Fatal(err)
	}
}

// loggedServer is a tern binary whose every log line is kept.
type loggedServer struct {
	*binaryServer
	done     chan struct{} // closed when the process has exited
	httpAddr chan string   // the HTTP listener's address, once
	mu       sync.Mutex
	lines    []string
}

func (s *loggedServer) count(substr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.lines {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

func (s *loggedServer) linesWith(substr string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range s.lines {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

var httpListenLine = regexp.MustCompile(`msg="HTTP listening" addr=(\S+)`)

// startLogged runs `tern server` on dataDir with extra environment and
// keeps its log.
func startLogged(t *testing.T, dataDir string, env ...string) *loggedServer {
	t.Helper()
	cmd := exec.Command(ternBin, "server", "--data-dir", dataDir, "--amqp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--mqtt-addr", "", "--mqtt-ws-addr", "")
	cmd.Env = append(os.Environ(), env...)
	return startLoggedCmd(t, cmd)
}

// startLoggedCmd starts cmd, a `tern server` (perhaps behind a wrapper),
// and keeps its log.
func startLoggedCmd(t *testing.T, cmd *exec.Cmd) *loggedServer {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &loggedServer{binaryServer: &binaryServer{cmd: cmd, exited: make(chan error, 1)}, done: make(chan struct{}), httpAddr: make(chan string, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if m := listenLine.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
			if m := httpListenLine.FindStringSubmatch(line); m != nil {
				s.httpAddr <- m[1]
			}
			s.mu.Lock()
			s.lines = append(s.lines, line)
			s.mu.Unlock()
		}
		s.exited <- cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-s.done // before the file system is unmounted
	})
	select {
	case s.amqpAddr = <-addr:
	case <-s.done:
		t.Fatalf("tern exited before listening:\n%s", strings.Join(s.linesWith(""), "\n"))
	case <-time.After(20 * time.Second):
		t.Fatal("tern server did not report its AMQP address")
	}
	return s
}

// confirmPublisher publishes crashBody(i) with confirms, keeping at most
// window publishes unconfirmed, and records which were acked and nacked.
type confirmPublisher struct {
	t        *testing.T
	conn     *amqp.Connection
	ch       *amqp.Channel
	queue    string
	confirms chan amqp.Confirmation
	blocked  chan amqp.Blocking
	window   int

	next      uint32 // index of the next publish; its delivery tag is next+1
	first     uint32 // index of the first publish on this channel
	pending   int
	isBlocked bool
	acked     map[uint32]bool
	nacked    map[uint32]bool
	blocks    int // connection.blocked notices seen
}

func newConfirmPublisher(t *testing.T, url, queue string, firstIndex uint32) *confirmPublisher {
	t.Helper()
	c, ch := dialChannel(t, url)
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	return &confirmPublisher{t: t, conn: c, ch: ch, queue: queue, window: 1000,
		confirms: ch.NotifyPublish(make(chan amqp.Confirmation, 1024)),
		blocked:  c.NotifyBlocked(make(chan amqp.Blocking, 64)),
		next:     firstIndex, first: firstIndex, acked: map[uint32]bool{}, nacked: map[uint32]bool{}}
}

// wait handles one confirm or blocking notice; false after timeout.
func (p *confirmPublisher) wait(timeout time.Duration) bool {
	select {
	case cf, ok := <-p.confirms:
		if !ok {
			p.t.Fatal("confirm channel closed: the connection died")
		}
		i := p.first + uint32(cf.DeliveryTag-1)
		if cf.Ack {
			p.acked[i] = true
		} else {
			p.nacked[i] = true
		}
		p.pending--
		return true
	case b := <-p.blocked:
		p.isBlocked = b.Active
		if b.Active {
			p.blocks++
		}
		return true
	case <-time.After(timeout):
		return false
	}
}

// publishUntil publishes until stop says so, n publishes were made, or no
// progress was possible for idle.
func (p *confirmPublisher) publishUntil(n int, idle time.Duration, stop func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for made := 0; made < n && !stop() && time.Now().Before(deadline); {
		for p.pending < p.window && !p.isBlocked && made < n {
			if err := p.ch.Publish("", p.queue, false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: crashBody(p.next)}); err != nil {
				p.t.Fatal(err)
			}
			p.next++
			p.pending++
			made++
		}
		if !p.wait(idle) {
			return
		}
	}
}

// settle waits for every outstanding confirm.
func (p *confirmPublisher) settle(timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for p.pending > 0 && time.Now().Before(deadline) {
		p.wait(time.Until(deadline))
	}
	if p.pending > 0 {
		p.t.Fatalf("%d publishes never confirmed", p.pending)
	}
}

// checkConfirmedExactlyOnce drains queue and checks that every confirmed
// index is there exactly once and nothing unknown is.
func checkConfirmedExactlyOnce(t *testing.T, url, queue string, acked map[uint32]bool, published uint32) {
	t.Helper()
	got := drainQueue(t, url, queue)
	seen := map[uint32]bool{}
	for _, v := range got {
		if seen[v] {
			t.Errorf("message %d delivered twice", v)
		}
		if v >= published {
			t.Errorf("message %d was never published", v)
		}
		seen[v] = true
	}
	var lost []uint32
	for v := range acked {
		if !seen[v] {
			lost = append(lost, v)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d confirmed messages lost after kill -9 (of %d confirmed, %d recovered), e.g. %v",
			len(lost), len(acked), len(got), lost[:min(len(lost), 10)])
		return
	}
	t.Logf("%d confirmed, %d recovered (%d published)", len(acked), len(got), published)
}

// fillThenFree runs the scenario of issue 10: publishers fill the file
// system at fs with confirmed persistent publishes until they are refused
// (stop says when), the filler file is deleted, each publishes 3000 more (filling it again),
// tern is killed with -9 and restarted, and every confirmed message must be
// there exactly once. It returns the publishers.
func fillThenFree(t *testing.T, fs string, publishers int, env []string, stop func(p *confirmPublisher) bool) ([]*confirmPublisher, *loggedServer) {
	t.Helper()
	filler := filepath.Join(fs, "filler")
	data := filepath.Join(fs, "data")
	s := startLogged(t, data, env...)
	pubs := make([]*confirmPublisher, publishers)
	for i := range pubs {
		pubs[i] = newConfirmPublisher(t, s.url(), "full", uint32(i)*1_000_000)
	}
	var wg sync.WaitGroup
	for _, p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.publishUntil(400_000, 3*time.Second, func() bool { return stop(p) })
		}()
	}
	wg.Wait()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for _, p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.publishUntil(3000, 10*time.Second, func() bool { return false })
		}()
	}
	wg.Wait()
	acked := map[uint32]bool{}
	var nacked int
	var top uint32
	for _, p := range pubs {
		p.settle(30 * time.Second)
		for k := range p.acked {
			acked[k] = true
		}
		nacked += len(p.nacked)
		top = max(top, p.next)
	}
	t.Logf("%d publishers: %d acked, %d nacked", publishers, len(acked), nacked)
	kill9(t, s.binaryServer)
	for _, p := range pubs {
		_ = p.conn.Close()
	}
	s2 := startLogged(t, data, env...)
	checkConfirmedExactlyOnce(t, s2.url(), "full", acked, top)
	kill9(t, s2.binaryServer)
	return pubs, s
}

// noisyLines returns the ERROR and WARN lines of s's log.
func noisyLines(s *loggedServer) []string {
	return append(s.linesWith("level=ERROR"), s.linesWith("level=WARN")...)
}

// TestFullDiskLosesNoConfirmedMessage fills a 64 MiB file system with the
// disk alarm off (TERN_DISK_FREE_LIMIT=0), so writes hit ENOSPC and
// publishes are nacked, from 8 publishers at once; frees space, publishes
// more, kill -9, restart: every acked message is there exactly once.
// Before the fix the broker confirmed thousands more messages than fitted
// on the disk and they were missing after the restart.
func TestFullDiskLosesNoConfirmedMessage(t *testing.T) {
	for run := 0; run < 2; run++ {
		fs := mountSmallFS(t, "64m")
		fillFile(t, filepath.Join(fs, "filler"), 8<<20)
		pubs, s := fillThenFree(t, fs, 8, []string{"TERN_DISK_FREE_LIMIT=0"}, func(p *confirmPublisher) bool { return len(p.nacked) >= 200 })
		nacked, after := 0, 0
		for _, p := range pubs {
			nacked += len(p.nacked)
			for i := p.next - 3000; i < p.next; i++ {
				if p.acked[i] {
					after++
				}
			}
		}
		if nacked == 0 {
			t.Fatalf("run %d: the disk never filled", run)
		}
		if after == 0 {
			t.Fatalf("run %d: nothing confirmed after space was freed", run)
		}
		// Thousands of refused messages log a few lines, not one each.
		if noisy := noisyLines(s); len(noisy) > 10 {
			t.Fatalf("run %d: %d nacks logged %d ERROR/WARN lines, e.g. %q", run, nacked, len(noisy), noisy[:3])
		}
	}
}

// TestDiskAlarmBlocksBeforeWritesFail: with disk_free_limit 16 MiB on a
// 64 MiB file system, 8 fast publishers are blocked by the disk alarm
// before any write fails — the free space is measured on the write path,
// and half the limit is a reserve where late publishes are refused before
// ENOSPC — so not one publish is nacked; the alarm's changes are logged
// once each. Then space is freed, the alarm clears, more is published,
// kill -9, restart: every confirmed message is there.
func TestDiskAlarmBlocksBeforeWritesFail(t *testing.T) {
	fs := mountSmallFS(t, "64m")
	filler := filepath.Join(fs, "filler")
	fillFile(t, filler, 8<<20)
	data := filepath.Join(fs, "data")
	env := []string{"TERN_DISK_FREE_LIMIT=16MiB"}
	s := startLogged(t, data, env...)
	pubs := make([]*confirmPublisher, 8)
	for i := range pubs {
		pubs[i] = newConfirmPublisher(t, s.url(), "full", uint32(i)*1_000_000)
	}
	var wg sync.WaitGroup
	for _, p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.publishUntil(400_000, 3*time.Second, func() bool { return p.blocks > 0 || len(p.nacked) > 0 })
		}()
	}
	wg.Wait()
	blocked, nackedEarly := 0, 0
	for _, p := range pubs {
		blocked += p.blocks
		nackedEarly += len(p.nacked)
	}
	if nackedEarly > 0 {
		t.Fatalf("%d publishes nacked (and %d ERROR/WARN lines logged) before the disk alarm blocked a publisher: writes failed first",
			nackedEarly, len(noisyLines(s)))
	}
	if blocked == 0 {
		t.Fatal("no publisher was blocked: the disk never reached the limit")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for _, p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.settle(30 * time.Second) // the held publishes go through once the alarm clears
			p.publishUntil(500, 10*time.Second, func() bool { return false })
			p.settle(30 * time.Second)
		}()
	}
	wg.Wait()
	acked := map[uint32]bool{}
	nacked := 0
	var top uint32
	for _, p := range pubs {
		for k := range p.acked {
			acked[k] = true
		}
		nacked += len(p.nacked)
		top = max(top, p.next)
	}
	t.Logf("%d acked, %d nacked, %d blocked notices", len(acked), nacked, blocked)
	if nacked > 0 {
		t.Errorf("%d publishes nacked: writes failed before the disk alarm stopped the publishers", nacked)
	}
	if n := s.count("writes to the data directory are failing"); n > 0 {
		t.Errorf("writes failed %d times before the alarm", n)
	}
	if set, cleared := s.count("disk alarm set"), s.count("disk alarm cleared"); set < 1 || set > 2 || cleared < 1 || cleared > 2 {
		t.Errorf("disk alarm logged set %d times, cleared %d times", set, cleared)
	}
	kill9(t, s.binaryServer)
	s = startLogged(t, data, env...)
	checkConfirmedExactlyOnce(t, s.url(), "full", acked, top)
}

// fillUp writes to path until the file system is full.
func fillUp(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for i := 0; i < 1<<14; i++ {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	for _, n := range []int{4096, 512, 1} {
		for i := 0; i < 1<<10; i++ {
			if _, err := f.Write(chunk[:n]); err != nil {
				break
			}
		}
	}
}

// TestRestartOnFullDiskThenDrain: tern restarted on a completely full file
// system with a backlog, a consumer takes and acks everything (the acks
// cannot be written): the process stays up and serves, and exits cleanly on
// SIGTERM. Once space returns, the drained messages stay gone although
// their acks could not be written: the drained log starts over in a new
// segment. Before the fix SIGTERM ended in "server failed: closing the
// store: ... no space left on device" (exit 1) and all 60,560 drained
// messages came back.
func TestRestartOnFullDiskThenDrain(t *testing.T) {
	fs := mountSmallFS(t, "32m")
	data := filepath.Join(fs, "data")
	env := []string{"TERN_DISK_FREE_LIMIT=0"}
	s := startLogged(t, data, env...)
	p := newConfirmPublisher(t, s.url(), "full", 0)
	p.publishUntil(400_000, 3*time.Second, func() bool { return len(p.nacked) >= 100 })
	p.settle(30 * time.Second)
	kill9(t, s.binaryServer)
	_ = p.conn.Close()
	fillUp(t, filepath.Join(fs, "filler"))

	s = startLogged(t, data, env...)
	c, ch := dialChannel(t, s.url())
	if err := ch.Qos(200, 0, false); err != nil {
		t.Fatal(err)
	}
	d, err := ch.Consume("full", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < len(p.acked) {
		select {
		case m := <-d:
			checkBody(t, m.Body)
			if err := m.Ack(false); err != nil {
				t.Fatal(err)
			}
			got++
		case <-s.done:
			t.Fatalf("tern exited while draining a full disk after %d messages:\n%s", got, strings.Join(noisyLines(s), "\n"))
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d messages delivered on a full disk", got, len(p.acked))
		}
	}
	// Still serving: a new connection declares, publishes, consumes.
	c2, ch2 := dialChannel(t, s.url())
	if _, err := ch2.QueueDeclare("after", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch2.Publish("", "after", false, false, amqp.Publishing{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if m, ok, err := ch2.Get("after", true); err != nil || !ok || string(m.Body) != "x" {
		t.Fatalf("the broker does not serve after draining a full disk: %v %v", ok, err)
	}
	_ = c2.Close()
	_ = c.Close()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.exited:
		if err != nil {
			t.Errorf("tern exited with %v after SIGTERM on a full disk:\n%s", err, strings.Join(noisyLines(s), "\n"))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("tern did not exit after SIGTERM")
	}

	// Space returns: the queue holds no confirmed message twice, and at most
	// the messages whose acks could not be written.
	if err := os.Remove(filepath.Join(fs, "filler")); err != nil {
		t.Fatal(err)
	}
	s = startLogged(t, data, env...)
	left := drainQueue(t, s.url(), "full")
	t.Logf("%d messages drained on a full disk; %d came back after the restart", got, len(left))
	if len(left) != 0 {
		// The drained queue's log starts over in a new segment, so the
		// acks that could not be written are not needed.
		t.Errorf("%d drained messages came back: their acks were lost", len(left))
	}
}
