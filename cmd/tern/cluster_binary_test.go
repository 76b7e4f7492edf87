package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/config"

	"github.com/tern-broker/tern/internal/testkit/freeport"
)

// TestQuorumQueueSurvivesKill9OfItsLeader: three tern processes; a quorum
// queue declared on one node is visible on another; a publisher with
// confirms on a node that does not lead the queue keeps publishing while
// kill -9 hits the leader; a surviving node then delivers every confirmed
// message (once, or again marked redelivered), none missing, in the order
// published.
func TestQuorumQueueSurvivesKill9OfItsLeader(t *testing.T) {
	nodes := startTestCluster(t, 3, 0)
	byName := map[string]*ternNode{}
	for _, nd := range nodes {
		byName[nd.name] = nd
	}

	c1, ch1 := dialChannel(t, nodes[0].url())
	if _, err := ch1.QueueDeclare("orders", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	_ = c1.Close()
	// Declare-ok came after the metadata group committed the queue, so
	// every node knows it now.
	for _, nd := range nodes[1:] {
		c, ch := dialChannel(t, nd.url())
		if _, err := ch.QueueDeclarePassive("orders", true, false, false, false, nil); err != nil {
			t.Fatalf("%s does not know the queue declared on n1: %v", nd.name, err)
		}
		_ = c.Close()
	}

	leader := byName[queueLeader(t, nodes[0], "orders", 20*time.Second)]
	var via, survivor *ternNode
	for _, nd := range nodes {
		if nd != leader {
			if via == nil {
				via = nd
			} else {
				survivor = nd
			}
		}
	}
	t.Logf("queue leader %s; publishing through %s", leader.name, via.name)

	pc, pch := dialChannel(t, via.url())
	defer pc.Close()
	if err := pch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	// The publisher runs until a second after the first confirm of a
	// message published after the kill; the kill comes once 1000
	// messages are confirmed.
	confirms := pch.NotifyPublish(make(chan amqp.Confirmation, 1<<16))
	var (
		mu                 sync.Mutex
		acked              = map[uint32]bool{}
		nacked             int
		published          atomic.Uint64 // delivery tags handed out
		killedAt           time.Time
		publishedAtKill    uint64
		failover           time.Duration // kill → first confirm of a later publish
		confirmedAfterKill = make(chan struct{})
		probeDone          <-chan probeResult
		elected            time.Duration // kill → a survivor names another leader
	)
	confirmDone := make(chan struct{})
	stopPublishing := make(chan struct{})
	go func() {
		defer close(confirmDone)
		for cf := range confirms {
			mu.Lock()
			if cf.Ack {
				acked[uint32(cf.DeliveryTag-1)] = true
				if !killedAt.IsZero() && failover == 0 && cf.DeliveryTag > publishedAtKill {
					failover = time.Since(killedAt)
					close(confirmedAfterKill)
				}
			} else {
				nacked++
			}
			done := isClosed(stopPublishing) && uint64(len(acked)+nacked) == published.Load()
			mu.Unlock()
			if done {
				return
			}
		}
	}()
	go func() {
		defer close(stopPublishing)
		if !leader.waitFor(60*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(acked) >= 1000
		}) {
			return
		}
		mu.Lock()
		killedAt, publishedAtKill = time.Now(), published.Load()
		mu.Unlock()
		leader.kill9(t)
		probeDone = probe(t, via, killedAt, stopPublishing)
		elected = electionTime(t, survivor, "orders", leader.name, killedAt)
		select {
		case <-confirmedAfterKill:
			time.Sleep(time.Second)
		case <-time.After(30 * time.Second):
		}
	}()
	// At most window publishes wait for their confirm, as a client that
	// keeps what it has not had confirmed would.
	const window = 256
	for i := uint32(0); !isClosed(stopPublishing); i++ {
		for {
			mu.Lock()
			outstanding := published.Load() - uint64(len(acked)+nacked)
			mu.Unlock()
			if outstanding < window || isClosed(stopPublishing) {
				break
			}
			time.Sleep(time.Millisecond)
		}
		if err := pch.Publish("", "orders", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: crashBody(i)}); err != nil {
			t.Fatalf("publish %d through %s: %v", i, via.name, err)
		}
		published.Add(1)
	}
	select {
	case <-confirmDone:
	case <-time.After(60 * time.Second):
		mu.Lock()
		t.Fatalf("after 60s only %d acks and %d nacks of %d publishes", len(acked), nacked, published.Load())
	}
	mu.Lock()
	if failover == 0 {
		t.Fatalf("no publish made after the kill was confirmed within 30s (%d confirmed, %d nacked of %d)", len(acked), nacked, published.Load())
	}
	t.Logf("%d published, %d confirmed, %d nacked; kill -9 of the leader → first confirm of a later publish: %v",
		published.Load(), len(acked), nacked, failover.Round(time.Millisecond))
	mu.Unlock()
	t.Logf("kill -9 of the leader → %s names a new leader: %v", survivor.name, elected.Round(time.Millisecond))
	if elected == 0 || elected > 10*time.Second {
		t.Fatalf("no new leader within 10s of the kill (%v)", elected)
	}
	pr := <-probeDone
	if pr.err != nil {
		t.Fatal(pr.err)
	}
	t.Logf("kill -9 of the leader → first confirm of a probe (one publish every 20ms on its own channel): %v; %d probes confirmed",
		pr.failover.Round(time.Millisecond), len(pr.acked))
	for v := range pr.acked {
		acked[v] = true
	}

	newLeader := queueLeader(t, survivor, "orders", 20*time.Second)
	if newLeader == leader.name {
		t.Fatalf("the killed node %s still leads", leader.name)
	}
	// Consume from the node that did not carry the publishes.
	cc, cch := dialChannel(t, survivor.url())
	defer cc.Close()
	if err := cch.Qos(200, 0, false); err != nil {
		t.Fatal(err)
	}
	d, err := cch.Consume("orders", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint32]bool{}
	last := map[bool]int64{false: -1, true: -1} // per publisher: the main one, the probe
	missing := func() int {
		n := 0
		for v := range acked {
			if !seen[v] {
				n++
			}
		}
		return n
	}
	for missing() > 0 {
		select {
		case m, ok := <-d:
			if !ok {
				t.Fatal("consumer closed")
			}
			v := checkBody(t, m.Body)
			if seen[v] && !m.Redelivered {
				t.Fatalf("message %d delivered twice, the second time not marked redelivered", v)
			}
			isProbe := v >= probeBase
			if !m.Redelivered && int64(v) <= last[isProbe] {
				t.Fatalf("message %d after %d: publisher order lost", v, last[isProbe])
			}
			if !m.Redelivered {
				last[isProbe] = int64(v)
			}
			seen[v] = true
			if err := m.Ack(false); err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%d messages consumed from %s; %d of %d confirmed ones missing", len(seen), survivor.name, missing(), len(acked))
		}
	}

	// The failover shows in the survivor's metrics.
	survivor.mu.Lock()
	metricsURL := "http://" + survivor.httpAddr + "/metrics"
	survivor.mu.Unlock()
	metrics, err := httpGet(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`(?m)^tern_raft_leader_changes_total [1-9]`, `(?m)^tern_raft_elections_total \d`,
		`(?m)^tern_raft_wal_fsync_seconds_count [1-9]`, `(?m)^tern_raft_commit_latency_seconds_count [1-9]`,
		`(?m)^tern_raft_groups 2$`, `(?m)^tern_raft_peer_reachable\{node="` + leader.name + `"\} 0$`} {
		if !regexp.MustCompile(re).Match(metrics) {
			t.Errorf("%s's /metrics has no line matching %s", survivor.name, re)
		}
	}

	// The killed node comes back on its data and catches up.
	leader.start(t)
	leader.waitServing(t, 60*time.Second)
	c, ch := dialChannel(t, leader.url())
	defer c.Close()
	if _, err := ch.QueueDeclarePassive("orders", true, false, false, false, nil); err != nil {
		t.Fatalf("%s after its restart: %v", leader.name, err)
	}
}

var refusedPeerLine = regexp.MustCompile(`msg="cluster (peer refused|handshake failed)".*wrong cluster secret`)

// TestWrongSecretIsRefused: a fourth node with the wrong secret cannot join;
// the cluster logs why and keeps serving.
func TestWrongSecretIsRefused(t *testing.T) {
	// n4 is in everyone's membership (a standby, so the three voters make
	// the quorum) but presents another secret.
	nodes := newTestCluster(t, 4, 1)
	for _, nd := range nodes[:3] {
		nd.start(t)
	}
	for _, nd := range nodes[:3] {
		nd.waitServing(t, 60*time.Second)
	}
	bad := nodes[3]
	bad.args = append(bad.args, "--cluster-secret-file", writeSecret(t, "the-wrong-secret-0123456789abcdef")) // the last flag wins
	bad.start(t)
	line := nodes[0].waitLog(t, refusedPeerLine, 20*time.Second)
	t.Logf("n1: %s", line)

	c, ch := dialChannel(t, nodes[1].url())
	defer c.Close()
	if _, err := ch.QueueDeclare("still-serving", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatalf("the cluster stopped serving after a bad peer: %v", err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	conf, err := ch.PublishWithDeferredConfirm("", "still-serving", false, false, amqp.Publishing{Body: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := conf.WaitContext(t.Context()); !ok || err != nil {
		t.Fatalf("publish not confirmed: %v %v", ok, err)
	}
	// A quorum queue deleted on one node is gone everywhere, its groups
	// with it.
	if _, err := ch.QueueDelete("still-serving", false, false, false); err != nil {
		t.Fatal(err)
	}
	var st clusterJSON
	if !nodes[0].waitFor(10*time.Second, func() bool {
		var err error
		if st, err = nodes[0].clusterStatus(t); err != nil {
			return false
		}
		for _, g := range st.Groups {
			if g.Queue == "still-serving" {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("n1 still hosts the deleted queue's group: %+v", st.Groups)
	}
	for _, m := range st.Nodes {
		if m.Name == bad.name && m.Reachable {
			t.Fatalf("n1 reports the node with the wrong secret reachable: %+v", st.Nodes)
		}
	}

	// SIGTERM stops a cluster node cleanly: clients closed, groups
	// stopped, exit status 0.
	nd := nodes[2]
	if err := nd.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-nd.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("a cluster node did not exit within 20s of SIGTERM")
	}
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.exitErr != nil {
		t.Fatalf("a cluster node exited with %v after SIGTERM", nd.exitErr)
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// probeBase is the first message index of the probe publisher.
const probeBase = 1 << 24

type probeResult struct {
	failover time.Duration // from killedAt to the first probe's confirm
	acked    map[uint32]bool
	err      error
}

// probe publishes a message to "orders" through nd every 20ms, from
// killedAt until stop, and reports when the first one was confirmed: the
// time a publisher waits for the new leader, without the main publisher's
// proposals that were lost with the old one (each nacked only after the
// proposal timeout) in front of it.
func probe(t *testing.T, nd *ternNode, killedAt time.Time, stop chan struct{}) <-chan probeResult {
	out := make(chan probeResult, 1)
	c, err := amqp.Dial(nd.url())
	if err != nil {
		out <- probeResult{err: err}
		return out
	}
	ch, err := c.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		_ = c.Close()
		out <- probeResult{err: err}
		return out
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 4096))
	go func() {
		defer c.Close()
		res := probeResult{acked: map[uint32]bool{}}
		sent := 0
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		settled := 0
		for !isClosed(stop) || settled < sent {
			select {
			case cf := <-confirms:
				settled++
				if cf.Ack {
					if res.failover == 0 {
						res.failover = time.Since(killedAt)
					}
					res.acked[probeBase+uint32(cf.DeliveryTag-1)] = true
				}
			case <-tick.C:
				if isClosed(stop) {
					continue
				}
				if err := ch.Publish("", "orders", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: crashBody(probeBase + uint32(sent))}); err != nil {
					res.err = err
					out <- res
					return
				}
				sent++
			case <-time.After(30 * time.Second):
				res.err = fmt.Errorf("probe: %d of %d confirms after 30s", settled, sent)
				out <- res
				return
			}
		}
		if res.failover == 0 {
			res.err = fmt.Errorf("probe: none of %d probes confirmed", sent)
		}
		out <- res
	}()
	return out
}

// electionTime polls nd's /api/cluster until quorum queue name has a
// leader other than old, and returns the time since killedAt (0 if none
// within 10s).
func electionTime(t *testing.T, nd *ternNode, name, old string, killedAt time.Time) time.Duration {
	for time.Since(killedAt) < 10*time.Second {
		if st, err := nd.clusterStatus(t); err == nil {
			for _, g := range st.Groups {
				if g.Kind == "quorum" && g.Queue == name && g.Leader != "" && g.Leader != old {
					return time.Since(killedAt)
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0
}

// TestPikaFailoverAcrossNodes runs test/pika/cluster_failover.py against
// three nodes and kill -9s the node it is connected to halfway through its
// publishes: it reconnects to another node, carries on, and consumes
// every message.
func TestPikaFailoverAcrossNodes(t *testing.T) {
	python := "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import pika").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3-pika is required in CI: %v", err)
		}
		t.Skip("python3-pika not installed (apt-get install python3-pika)")
	}
	nodes := startTestCluster(t, 3, 0)
	var urls []string
	byURL := map[string]*ternNode{}
	for _, nd := range nodes {
		urls = append(urls, nd.url())
		byURL[nd.url()] = nd
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, filepath.Join("..", "..", "test", "pika", "cluster_failover.py"))
	cmd.Env = append(os.Environ(), "AMQP_URLS="+strings.Join(urls, ","), "COUNT=2000")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out []string
	var connected *ternNode
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		out = append(out, line)
		if u, ok := strings.CutPrefix(line, "connected to "); ok && !killed {
			connected = byURL[u]
		}
		if line == "published 750" && !killed && connected != nil {
			t.Logf("kill -9 %s, the node the script publishes through", connected.name)
			connected.kill9(t)
			killed = true
		}
	}
	err = cmd.Wait()
	t.Logf("cluster_failover.py:\n%s", strings.Join(out, "\n"))
	if err != nil {
		t.Fatalf("cluster_failover.py: %v", err)
	}
	if !killed {
		t.Fatal("the script never reported 750 publishes: nothing was killed")
	}
	if !strings.Contains(strings.Join(out, "\n"), "consumed 2000 distinct of 2000") {
		t.Fatal("not every message consumed")
	}
}

// TestWholeClusterRestarts: kill -9 every node, start them again on their
// data: the definitions and every confirmed message of a quorum queue
// come back, in order.
func TestWholeClusterRestarts(t *testing.T) {
	nodes := startTestCluster(t, 3, 0)
	c, ch := dialChannel(t, nodes[0].url())
	if _, err := ch.QueueDeclare("durable-q", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("events", "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("durable-q", "order.*", "events", false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	const n = 500
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, n))
	for i := range uint32(n) {
		if err := ch.Publish("events", "order.new", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: crashBody(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		select {
		case cf := <-confirms:
			if !cf.Ack {
				t.Fatalf("nack %d", cf.DeliveryTag)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("confirms missing")
		}
	}
	_ = c.Close()
	for _, nd := range nodes {
		nd.kill9(t)
	}
	for _, nd := range nodes {
		nd.start(t)
	}
	for _, nd := range nodes {
		nd.waitServing(t, 60*time.Second)
	}
	// The binding came back with the queue: publish one more through it.
	c, ch = dialChannel(t, nodes[1].url())
	defer c.Close()
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	conf, err := ch.PublishWithDeferredConfirm("events", "order.late", true, false, amqp.Publishing{Body: crashBody(n)})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := conf.WaitContext(t.Context()); !ok || err != nil {
		t.Fatalf("publish after the restart: %v %v", ok, err)
	}
	// Consumed from n3's replica, which may apply the last entries a
	// moment after n2 confirmed them: wait for each.
	cc, cch := dialChannel(t, nodes[2].url())
	defer cc.Close()
	d, err := cch.Consume("durable-q", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint32(n + 1) {
		select {
		case m := <-d:
			if v := checkBody(t, m.Body); v != i {
				t.Fatalf("position %d holds message %d", i, v)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d messages after the whole cluster restarted", i, n+1)
		}
	}
}

// TestUnknownNodeIsRefused: a node with the right secret that is not in
// the cluster's peers is refused at the handshake, with a log line naming
// its id; the cluster goes on.
func TestUnknownNodeIsRefused(t *testing.T) {
	nodes := startTestCluster(t, 3, 0)
	// The lower id dials: choose a stranger whose id is below every
	// member's, so it dials them and they log why they refuse it.
	lowest := ^uint64(0)
	for _, nd := range nodes {
		lowest = min(lowest, config.NodeIDFor(nd.name))
	}
	name := ""
	for i := 0; name == ""; i++ {
		if c := fmt.Sprintf("stranger%d", i); config.NodeIDFor(c) < lowest {
			name = c
		}
	}
	stranger := &ternNode{name: name, clusterAddr: freeport.Loopback(t), dataDir: t.TempDir()}
	var peers []string
	for _, nd := range append(nodes, stranger) {
		peers = append(peers, nd.name+"@"+nd.clusterAddr)
	}
	stranger.args = []string{"server", "--data-dir", stranger.dataDir, "--amqp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--mqtt-addr", "", "--mqtt-ws-addr", "", "--node-id", name, "--cluster-addr", stranger.clusterAddr,
		"--peers", strings.Join(peers, ","), "--cluster-secret-file", writeSecret(t, testClusterSecret)}
	stranger.start(t)
	line := nodes[0].waitLog(t, regexp.MustCompile(`msg="cluster peer refused".*unknown node id `+strconv.FormatUint(config.NodeIDFor(name), 10)), 20*time.Second)
	t.Logf("n1: %s", line)
	c, ch := dialChannel(t, nodes[0].url())
	defer c.Close()
	if _, err := ch.QueueDeclare("after-the-stranger", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatalf("the cluster stopped serving: %v", err)
	}
}
